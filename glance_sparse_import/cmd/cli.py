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

"""The ``glance-sparse-import`` command, for use without Glance.

``inspect`` tells what an import of a file would find, write and record;
``import`` writes it into an RBD pool as the ``sparse_rbd_import`` plugin
does. Both run the plugin's own safety checks, reader, copy loop and
hashing, so what they print is what the plugin would do with that file.
``check`` says whether the plugin can run in a Glance deployment. Each
subcommand lives in a module of its own; this one parses and dispatches.
"""

import argparse
import logging
import signal
import sys

import pbr.version

from glance_sparse_import.cmd import add_site
from glance_sparse_import.cmd import check
from glance_sparse_import.cmd import common
from glance_sparse_import.cmd import import_image
from glance_sparse_import.cmd import inspect
from glance_sparse_import import errors


def build_parser(argv=None):
    # No abbreviations: --conf of import would be ambiguous here.
    parser = argparse.ArgumentParser(
        prog=common.PROG, allow_abbrev=False,
        description='Inspect a disk image, or import it into a Ceph RBD '
                    'pool, exactly as the sparse_rbd_import Glance plugin '
                    'would.')
    common.config_options(parser, 'config')
    parser.add_argument('--debug', action='store_true',
                        help='log what the plugin modules log, in detail')
    parser.add_argument('--version', action='version',
                        version=pbr.version.VersionInfo(
                            'glance-sparse-import').version_string())
    sub = parser.add_subparsers(dest='command', metavar='COMMAND')
    sub.required = True
    inspect.add_parser(sub)
    import_image.add_parser(sub)
    check.add_parser(sub)
    add_site.register(sub, sys.argv[1:] if argv is None else argv)
    return parser


def _on_sigterm(signum, frame):
    # Unwinds like Ctrl-C, so a partial RBD image is removed.
    raise KeyboardInterrupt()


def main(argv=None):
    parser = build_parser(argv)
    args = parser.parse_args(argv)
    # What the plugin would log for Glance's operator goes to stderr; the
    # error line at the end is the short summary.
    logging.basicConfig(
        stream=sys.stderr,
        format=('%(levelname)s %(name)s: %(message)s' if args.debug
                else '%(levelname)s: %(message)s'),
        level=logging.DEBUG if args.debug else logging.WARNING)
    signal.signal(signal.SIGTERM, _on_sigterm)
    try:
        args.config = ((args.config or []) +
                       (getattr(args, 'check_config', None) or []))
        if getattr(args, 'preload', None):
            args.preload(args)
        common.configure(args.config)
        args.func(args)
    except (common.CommandError, errors.SparseImportError) as e:
        sys.stderr.write('%s: error: %s\n' % (common.PROG, e))
        return common.EXIT_ERROR
    except KeyboardInterrupt:
        sys.stderr.write('%s: interrupted\n' % common.PROG)
        return common.EXIT_INTERRUPTED
    return 0


if __name__ == '__main__':
    sys.exit(main())
