#    Licensed under the Apache License, Version 2.0 (the "License"); you may
#    not use this file except in compliance with the License. You may obtain
#    a copy of the License at
#
#         http://www.apache.org/licenses/LICENSE-2.0
#
#    Unless required by applicable law or agreed to in writing, software
#    distributed under the License is distributed on an "AS IS" BASIS, WITHOUT
#    WARRANTIES OR CONDITIONS OF ANY KIND, either express or implied. See the
#    License for the specific language governing permissions and limitations
#    under the License.

"""What the subcommands of ``glance-sparse-import`` share.

Exit codes, the one-line error, the configuration options read as
Glance's services read them, and the progress bar.
"""

import glob
import os
import time

from oslo_config import cfg
from oslo_utils import units

from glance_sparse_import import opts

CONF = cfg.CONF
PROG = 'glance-sparse-import'

EXIT_ERROR = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130

# Seconds between progress bar updates.
PROGRESS_INTERVAL = 0.5
# Zero runs are handed to the hashers in pieces of this size when a progress
# bar is shown (see ProgressHasher).
PROGRESS_PIECE = 4 * units.Mi


class CommandError(Exception):
    """A failure worth one line on stderr, not a traceback."""


class ProgressBar(object):
    """A one-line progress bar, drawn only on a terminal."""

    WIDTH = 30

    def __init__(self, stream, label):
        self._stream = stream
        self._label = label
        self._start = time.monotonic()
        self._drawn = False
        self.enabled = stream.isatty()

    def draw(self, done, total):
        fraction = done / total if total else 1.0
        filled = int(self.WIDTH * fraction)
        elapsed = max(time.monotonic() - self._start, 1e-6)
        self._stream.write('\r%s [%s%s] %3d%% %d/%d MiB %.0f MB/s ' % (
            self._label, '#' * filled, ' ' * (self.WIDTH - filled),
            fraction * 100, done // units.Mi, total // units.Mi,
            done / elapsed / 1e6))
        self._stream.flush()
        self._drawn = True

    def complete(self, total):
        """Show the final state, if the bar was shown at all."""
        if self._drawn:
            self.draw(total, total)

    def close(self):
        if self._drawn:
            self._stream.write('\n')
            self._stream.flush()
            self._drawn = False


class ProgressHasher(object):
    """Feed a ParallelHasher and draw the progress of the hashing.

    Hashing every byte of the virtual size is most of the time an import
    takes, and the hasher queues a zero run as one item, however long: fed
    whole, the copy would end at once and the hashing go on unseen. Fed in
    pieces, its bounded queues keep the bar close to the hashing.
    """

    def __init__(self, hasher, bar, total):
        self._hasher = hasher
        self._bar = bar
        self._total = total
        self._done = 0
        self._next = time.monotonic() + PROGRESS_INTERVAL

    def update(self, data):
        self._hasher.update(data)
        self._advance(len(data))

    def update_zeros(self, length):
        while length > 0:
            n = min(length, PROGRESS_PIECE)
            self._hasher.update_zeros(n)
            self._advance(n)
            length -= n

    def _advance(self, n):
        self._done += n
        if time.monotonic() >= self._next:
            self._bar.draw(self._done, self._total)
            self._next = time.monotonic() + PROGRESS_INTERVAL


def configure(sources):
    """Parse the configuration as Glance's services do.

    ``sources`` are ``(option, path)`` pairs in command line order, option
    '--config-file' or '--config-dir': oslo.config reads them in that
    order, a directory's ``*.conf`` files sorted by name, later values
    overriding earlier ones.
    """
    opts.register_opts(CONF)
    args = [item for source in sources for item in source]
    try:
        CONF(args=args, project='glance', prog=PROG,
             default_config_files=[], default_config_dirs=[])
    except cfg.Error as e:
        raise CommandError('bad configuration: %s' % e)


def files_read(sources):
    """The files the configuration came from, in the order read."""
    files = []
    for option, path in sources:
        if option == '--config-dir':
            files.extend(sorted(glob.glob(os.path.join(path, '*.conf'))))
        else:
            files.append(path)
    return files


def config_source(option):
    def tag(path):
        return (option, path)
    return tag


def config_options(parser, dest):
    """--config-file and --config-dir, kept in command line order."""
    parser.add_argument(
        '--config-file', action='append', dest=dest,
        type=config_source('--config-file'), metavar='PATH',
        help='a configuration file Glance reads (glance-api.conf, '
             'glance-image-import.conf, ...); repeat for several, in the '
             'order Glance is given them. Default: none, built-in '
             'defaults.')
    parser.add_argument(
        '--config-dir', action='append', dest=dest,
        type=config_source('--config-dir'), metavar='DIR',
        help='a directory whose *.conf files Glance reads, in name order '
             '(glance.conf.d of RHOSO and Kolla), as Glance\'s '
             '--config-dir')
