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

"""The staging area, and the one check of every staged path read.

The plugin reads, converts, replaces and deletes the file named by the
flow's ``file_path``. It must be a regular file in Glance's staging area
(``[os_glance_staging_store] filesystem_store_datadir`` with
``enabled_backends``, else ``node_staging_uri``), reached without symbolic
links: anything else would let the import read, and then delete, a file of
the host.
"""

import os
import stat

from oslo_config import cfg
from oslo_log import log as logging

from glance_sparse_import import errors

LOG = logging.getLogger(__name__)
CONF = cfg.CONF

_FILE_SCHEME = 'file://'


def staging_dir(conf=CONF):
    """Glance's staging directory, as the import flow builds its URI."""
    if conf.enabled_backends:
        return conf.os_glance_staging_store.filesystem_store_datadir
    uri = conf.node_staging_uri
    if not uri.startswith(_FILE_SCHEME):
        # _VerifyStaging refuses that before any plugin runs.
        raise errors.InvalidImage(
            'The staged image is not in the staging area')
    return uri[len(_FILE_SCHEME):]


def staged_path(file_path, conf=CONF):
    """The local path of ``file_path``, checked to be in the staging area.

    :raises: errors.InvalidImage
    """
    path = file_path
    if path.startswith(_FILE_SCHEME):
        path = path[len(_FILE_SCHEME):]
    top = os.path.realpath(staging_dir(conf))
    path = os.path.abspath(path)
    # The staging directory may be configured through a symbolic link; the
    # file in it may not be one.
    if os.path.realpath(os.path.dirname(path)) != top:
        LOG.error('Staged data %(path)s is not in the staging area %(top)s',
                  {'path': path, 'top': top})
        raise errors.InvalidImage(
            'The staged image is not in the staging area')
    try:
        mode = os.lstat(path).st_mode
    except FileNotFoundError:
        raise errors.SourceError('The staged image cannot be read')
    if not stat.S_ISREG(mode):
        LOG.error('Staged data %s is not a regular file', path)
        raise errors.InvalidImage('The staged image is not a regular file')
    return path
