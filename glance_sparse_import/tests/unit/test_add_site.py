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

"""add-site's checks and clean-up, over a fake images API and fake Ceph.

The failures a real cluster cannot be made to show on demand: data that
does not match the image's recorded hashes, the image deleted or locked
between the copy and the registration, a registration refused.
"""

import hashlib
import threading

from oslo_config import cfg
import pytest

from glance_sparse_import.cmd import add_site
from glance_sparse_import.cmd import common
from glance_sparse_import import errors
from glance_sparse_import import image_api
from glance_sparse_import import opts
from glance_sparse_import.sources import base
from glance_sparse_import import stores

MiB = 1024 ** 2
IMAGE_ID = '11111111-2222-3333-4444-555555555555'
FSID = {'edge1': 'fsid-1', 'edge2': 'fsid-2', 'edge3': 'fsid-3'}
DATA = b'x' * MiB + bytes(2 * MiB) + b'y' * 4096


def _store(name):
    return stores.RbdStore(name=name, pool='images', user='glance',
                           conf_file='/etc/ceph/%s.conf' % name,
                           chunk_size=8 * MiB, connect_timeout=5)


RBD = {n: _store(n) for n in FSID}


def _image(data=DATA, **changes):
    image = {
        'id': IMAGE_ID, 'status': 'active', 'size': len(data),
        'checksum': hashlib.md5(data).hexdigest(),
        'os_hash_algo': 'sha512',
        'os_hash_value': hashlib.sha512(data).hexdigest(),
        'stores': 'edge1',
        'locations': [{'url': 'rbd://fsid-1/images/%s/snap' % IMAGE_ID,
                       'metadata': {'store': 'edge1'}}],
    }
    image.update(changes)
    return image


class FakeAPI(object):
    """Answers ``get_image`` from a list of images, the last one repeated."""

    def __init__(self, *images, refuse=()):
        self.images = list(images)
        self.added = []
        self.refuse = refuse

    def get_image(self, image_id):
        image = self.images.pop(0) if len(self.images) > 1 else \
            self.images[0]
        if image is None:
            raise image_api.ImageNotFound('GET: not found (404)', 404)
        return dict(image)

    def add_location(self, image_id, url, metadata):
        if metadata['store'] in self.refuse:
            raise image_api.ImageAPIError('PATCH: HTTP 403: Forbidden', 403)
        self.added.append((url, metadata))
        image = self.images[-1]
        image['stores'] += ',' + metadata['store']


class FakeSource(object):

    def __init__(self, data, fsid='fsid-1'):
        self.data = data
        self.size = len(data)
        self.fsid = fsid

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        pass

    def chunks(self):
        for offset, n in base.requests(0, self.size, MiB):
            piece = self.data[offset:offset + n]
            yield base.Chunk(offset, n, None if not piece.strip(b'\0')
                             else piece)


class FakeTarget(object):
    """An RBD image in memory; ``made`` lists every one still there."""

    made = {}

    def __init__(self, store, image_name, size, fail=None):
        self.store = store
        self.name = store.name
        self.image_name = image_name
        self.buf = bytearray(size)
        self.bytes_written = 0
        self.fail = fail
        self.url = 'rbd://%s/images/%s/snap' % (FSID[self.name], image_name)

    def open(self):
        if self.fail == 'open':
            raise errors.StoreError('store %s: cannot create the RBD image'
                                    % self.name)
        self.made[self.name] = self

    def write(self, offset, data):
        if self.fail == 'write':
            raise errors.StoreError('store %s: write failed' % self.name)
        self.buf[offset:offset + len(data)] = data
        self.bytes_written += len(data)

    def finish(self):
        if self.fail == 'finish':
            raise errors.StoreError('store %s: cannot protect the snapshot'
                                    % self.name)

    def remove(self):
        self.made.pop(self.name, None)


class Adder(add_site.SiteAdder):

    def __init__(self, api, data=DATA, fail=None, fsid='fsid-1'):
        super(Adder, self).__init__(api, RBD, progress=False)
        self.data = data
        self.fail = fail or {}
        self.fsid = fsid

    def _source(self, store, pool, name, snapshot):
        assert (store.name, pool, name, snapshot) == \
            ('edge1', 'images', IMAGE_ID, 'snap')
        return FakeSource(self.data, self.fsid)

    def _target(self, store, image_id, size, location_urls):
        return FakeTarget(store, image_id, size, self.fail.get(store.name))


@pytest.fixture(autouse=True)
def clean():
    opts.register_opts(cfg.CONF)
    FakeTarget.made.clear()
    yield
    FakeTarget.made.clear()


def test_two_sites_added():
    api = FakeAPI(_image())
    results = Adder(api).add(IMAGE_ID, ['edge2', 'edge3'])
    assert [(r.store, r.error) for r in results] == \
        [('edge2', None), ('edge3', None)]
    assert api.added == [
        ('rbd://fsid-2/images/%s/snap' % IMAGE_ID, {'store': 'edge2'}),
        ('rbd://fsid-3/images/%s/snap' % IMAGE_ID, {'store': 'edge3'})]
    for target in FakeTarget.made.values():
        assert bytes(target.buf) == DATA
        # The zero MiBs are never written.
        assert target.bytes_written == MiB + 4096


def test_hash_mismatch_registers_nothing():
    api = FakeAPI(_image())
    data = DATA[:-1] + b'z'
    with pytest.raises(errors.InvalidImage) as e:
        Adder(api, data=data).add(IMAGE_ID, ['edge2', 'edge3'])
    assert 'checksum %s, the image records %s' % (
        hashlib.md5(data).hexdigest(), _image()['checksum']) in str(e.value)
    assert 'os_hash_value' in str(e.value)
    assert api.added == []
    assert FakeTarget.made == {}


def test_size_mismatch_writes_nothing():
    api = FakeAPI(_image(size=len(DATA) + 1))
    with pytest.raises(common.CommandError, match='has %d bytes, the image %d'
                       % (len(DATA), len(DATA) + 1)):
        Adder(api).add(IMAGE_ID, ['edge2'])
    assert FakeTarget.made == {}


def test_location_of_another_cluster():
    api = FakeAPI(_image())
    with pytest.raises(common.CommandError, match="fsid is fsid-9, the "
                       "location's fsid-1"):
        Adder(api, fsid='fsid-9').add(IMAGE_ID, ['edge2'])
    assert FakeTarget.made == {}


@pytest.mark.parametrize('later, message', [
    (None, 'image %s was deleted during the copy' % IMAGE_ID),
    ('deleted', 'image %s was deleted during the copy' % IMAGE_ID),
    (_image(os_glance_import_task='t1'),
     'image %s was locked by import task t1 during the copy: try again '
     'when it ends' % IMAGE_ID),
    (_image(os_glance_import_task='t1', status='importing'),
     'locked by import task t1 during the copy'),
    (_image(status='deactivated'),
     'changed during the copy: status active -> deactivated'),
])
def test_image_changed_during_the_copy(later, message):
    if later is None:
        # Deleted after the check before registering: the PATCH fails.
        api = DeletedOnPatch(_image())
    elif later == 'deleted':
        api = FakeAPI(_image(), None)
    else:
        api = FakeAPI(_image(), later)
    with pytest.raises(common.CommandError, match=message):
        Adder(api).add(IMAGE_ID, ['edge2', 'edge3'])
    assert FakeTarget.made == {}


class DeletedOnPatch(FakeAPI):

    def add_location(self, image_id, url, metadata):
        raise image_api.ImageNotFound('PATCH: not found (404)', 404)


def test_registration_refused_for_one_site():
    api = FakeAPI(_image(), refuse=('edge2',))
    results = Adder(api).add(IMAGE_ID, ['edge2', 'edge3'])
    assert results[0].error == 'registration refused: PATCH: HTTP 403: ' \
        'Forbidden'
    assert results[1].error is None
    assert results[1].line(IMAGE_ID).startswith(
        'image %s: store edge3: added rbd://fsid-3/' % IMAGE_ID)
    assert list(FakeTarget.made) == ['edge3']


@pytest.mark.parametrize('fail', ['open', 'write', 'finish'])
def test_one_site_failing_leaves_the_other(fail):
    api = FakeAPI(_image())
    results = Adder(api, fail={'edge3': fail}).add(IMAGE_ID,
                                                   ['edge2', 'edge3'])
    assert results[0].error is None
    assert 'store edge3: ' in results[1].error
    assert results[1].line(IMAGE_ID).startswith(
        'image %s: store edge3: NOT added: store edge3' % IMAGE_ID)
    assert list(FakeTarget.made) == ['edge2']
    assert [m['store'] for _u, m in api.added] == ['edge2']


class MeetingTarget(FakeTarget):
    """Opens only once every site's open has started."""

    barrier = None

    def open(self):
        self.barrier.wait()
        super(MeetingTarget, self).open()


def test_sites_opened_at_once():
    """A site down costs one Ceph timeout, not one per site."""
    class MeetingAdder(Adder):
        def _target(self, store, image_id, size, location_urls):
            return MeetingTarget(store, image_id, size)

    MeetingTarget.barrier = threading.Barrier(2, timeout=10)
    results = MeetingAdder(FakeAPI(_image())).add(IMAGE_ID,
                                                  ['edge2', 'edge3'])
    assert [r.error for r in results] == [None, None]
    assert sorted(FakeTarget.made) == ['edge2', 'edge3']


def test_every_site_failing():
    api = FakeAPI(_image())
    with pytest.raises(errors.StoreError):
        Adder(api, fail={'edge2': 'write', 'edge3': 'write'}).add(
            IMAGE_ID, ['edge2', 'edge3'])
    assert FakeTarget.made == {}
    assert api.added == []


@pytest.mark.parametrize('changes, message', [
    ({'status': 'queued'}, 'is queued, not active'),
    ({'os_glance_import_task': 't1'}, 'locked by import task t1'),
    ({'stores': 'edge1,edge2'}, r'already in store\(s\) edge2'),
    ({'locations': None}, 'show_multiple_locations = True'),
    ({'locations': [{'url': 'file:///x', 'metadata': {'store': 'edge1'}}]},
     'has no location in an RBD store'),
])
def test_refused_images(changes, message):
    image = _image(**changes)
    if image['locations'] is None:
        del image['locations']
    with pytest.raises(common.CommandError, match=message):
        Adder(FakeAPI(image)).add(IMAGE_ID, ['edge2'])
    assert FakeTarget.made == {}


def test_check_stores():
    kinds = {'edge1': 'rbd', 'edge2': 'rbd', 'file1': 'file'}
    add_site.check_stores(['edge2'], RBD, kinds)
    with pytest.raises(common.CommandError) as e:
        add_site.check_stores(['nosuch', 'file1'], RBD, kinds)
    assert str(e.value) == (
        'nosuch is not a store of this Glance (enabled_backends: edge1, '
        'edge2, file1); file1 is a file store, not an RBD store')
    with pytest.raises(common.CommandError, match='no enabled_backends'):
        add_site.check_stores(['edge2'], RBD, {})


def test_parse_rbd_url():
    assert add_site.parse_rbd_url('rbd://f/images/i%2Fd/snap') == \
        ('f', 'images', 'i/d', 'snap')
    assert add_site.parse_rbd_url('rbd://f/images/id') is None
    assert add_site.parse_rbd_url('file:///f/images/id/snap') is None


def test_stores_list():
    assert add_site._stores_list('a, b,a,,c') == ['a', 'b', 'c']


class FailingSource(FakeSource):

    def chunks(self):
        yield base.Chunk(0, MiB, DATA[:MiB])
        raise errors.SourceError('source store edge1: read failed at byte '
                                 '1048576')


class FailingAdder(Adder):

    def _source(self, store, pool, name, snapshot):
        return FailingSource(self.data)


@pytest.mark.parametrize('later, message', [
    (None, 'image %s was deleted during the copy' % IMAGE_ID),
    (_image(), 'read failed at byte 1048576'),
])
def test_source_failing(later, message):
    """A read error is the image's deletion if the image is gone."""
    with pytest.raises((common.CommandError, errors.SourceError),
                       match=message):
        FailingAdder(FakeAPI(_image(), later)).add(IMAGE_ID, ['edge2'])
    assert FakeTarget.made == {}


class RemovalAwaitingSource(FakeSource):
    """Yields its last chunk only once edge3's copy has been removed."""

    removed = None

    def chunks(self):
        chunks = list(super(RemovalAwaitingSource, self).chunks())
        for chunk in chunks[:-1]:
            yield chunk
        assert self.removed.wait(10), 'edge3 not removed during the copy'
        yield chunks[-1]


class RemovalSignallingTarget(FakeTarget):

    def remove(self):
        super(RemovalSignallingTarget, self).remove()
        if self.name == 'edge3':
            RemovalAwaitingSource.removed.set()


def test_failed_site_removed_during_the_copy():
    """A full site is freed at once, not when the other sites are done."""
    class EagerAdder(Adder):
        def _source(self, store, pool, name, snapshot):
            return RemovalAwaitingSource(self.data)

        def _target(self, store, image_id, size, location_urls):
            return RemovalSignallingTarget(store, image_id, size,
                                           self.fail.get(store.name))

    RemovalAwaitingSource.removed = threading.Event()
    api = FakeAPI(_image())
    results = EagerAdder(api, fail={'edge3': 'write'}).add(
        IMAGE_ID, ['edge2', 'edge3'])
    assert results[0].error is None
    assert results[1].error == 'store edge3: write failed'
    assert list(FakeTarget.made) == ['edge2']
    assert [m['store'] for _u, m in api.added] == ['edge2']
