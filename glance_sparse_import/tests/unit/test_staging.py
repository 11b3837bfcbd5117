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

"""The staged path check, for every way out of the staging area."""

import os

from oslo_config import cfg
import pytest

from glance_sparse_import import errors
from glance_sparse_import import staging


def _conf(staging_dir, multistore=True):
    conf = cfg.ConfigOpts()
    conf.register_opt(cfg.ListOpt('enabled_backends'))
    conf.register_opt(cfg.StrOpt('node_staging_uri'))
    conf.register_opt(cfg.StrOpt('filesystem_store_datadir'),
                      group='os_glance_staging_store')
    conf([], default_config_files=[])
    if multistore:
        conf.set_override('enabled_backends', ['ceph:rbd'])
        conf.set_override('filesystem_store_datadir', staging_dir,
                          group='os_glance_staging_store')
    else:
        conf.set_override('node_staging_uri', 'file://' + staging_dir)
    return conf


@pytest.fixture
def area(tmp_path):
    top = tmp_path / 'staging'
    top.mkdir()
    (top / 'image').write_bytes(b'data')
    (tmp_path / 'secret').write_bytes(b'secret')
    return tmp_path


@pytest.mark.parametrize('multistore', [True, False])
def test_staged_file_accepted(area, multistore):
    conf = _conf(str(area / 'staging'), multistore)
    path = str(area / 'staging' / 'image')
    assert staging.staged_path('file://' + path, conf) == path
    assert staging.staged_path(path, conf) == path


def test_staging_dir_through_a_link_accepted(area):
    os.symlink(str(area / 'staging'), str(area / 'link'))
    conf = _conf(str(area / 'link'))
    path = str(area / 'link' / 'image')
    assert staging.staged_path('file://' + path, conf) == path


@pytest.mark.parametrize('name', [
    '../secret', 'sub/../../secret', '/etc/passwd', 'sub/image'])
def test_outside_refused(area, name):
    (area / 'staging' / 'sub').mkdir()
    (area / 'staging' / 'sub' / 'image').write_bytes(b'data')
    conf = _conf(str(area / 'staging'))
    path = os.path.join(str(area / 'staging'), name)
    with pytest.raises(errors.InvalidImage,
                       match='not in the staging area'):
        staging.staged_path('file://' + path, conf)


def test_symlinks_refused(area):
    top = area / 'staging'
    os.symlink(str(area / 'secret'), str(top / 'file-link'))
    os.symlink(str(area), str(top / 'dir-link'))
    conf = _conf(str(top))
    with pytest.raises(errors.InvalidImage, match='not a regular file'):
        staging.staged_path(str(top / 'file-link'), conf)
    with pytest.raises(errors.InvalidImage,
                       match='not in the staging area'):
        staging.staged_path(str(top / 'dir-link' / 'secret'), conf)


def test_not_a_file_refused(area):
    top = area / 'staging'
    (top / 'dir').mkdir()
    os.mkfifo(str(top / 'fifo'))
    conf = _conf(str(top))
    for name in ('dir', 'fifo'):
        with pytest.raises(errors.InvalidImage, match='not a regular file'):
            staging.staged_path(str(top / name), conf)
    with pytest.raises(errors.SourceError, match='cannot be read'):
        staging.staged_path(str(top / 'missing'), conf)
