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

"""A Ceph store in memory that fails where a test says, for unit tests.

It follows the target protocol (``targets.base``) the way ``RbdTarget``
does: ``open`` creates an image of ``size`` zero bytes, ``finish``
snapshots it, ``remove`` deletes it; a step listed in ``fail_on`` raises
``StoreError`` instead (``write`` from byte ``fail_at`` on).
"""

import collections

from glance_sparse_import import errors
from glance_sparse_import.targets import base

FSID = '00000000-0000-4000-8000-0000000000fc'

Store = collections.namedtuple('Store', 'name pool')


class FakeCephTarget(base.Target):

    # Seconds _remove_quietly waits for a removal (RbdTarget's attribute).
    op_timeout = 5

    def __init__(self, name, size, fail_on=(), fail_at=0, pool='images',
                 image_name='image'):
        self.name = name
        self.store = Store(name, pool)
        self.image_name = image_name
        self.size = size
        self.fail_on = set(fail_on)
        self.fail_at = fail_at
        self.data = None
        self.snapshot = None
        self.steps = []
        self.writes = 0

    @property
    def url(self):
        return 'rbd://%s/%s/%s/snap' % (FSID, self.store.pool,
                                        self.image_name)

    def _step(self, step):
        self.steps.append(step)
        if step in self.fail_on:
            raise errors.StoreError('store %s: %s failed' % (self.name, step))

    def open(self):
        self._step('open')
        self.data = bytearray(self.size)

    def write(self, offset, data):
        if 'write' in self.fail_on and offset >= self.fail_at:
            self._step('write')
        self.writes += 1
        self.data[offset:offset + len(data)] = data

    def finish(self):
        self._step('finish')
        self.snapshot = bytes(self.data)

    def remove(self):
        self.steps.append('remove')
        self.data = self.snapshot = None

    @property
    def removed(self):
        return 'remove' in self.steps
