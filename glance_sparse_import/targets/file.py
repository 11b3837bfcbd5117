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

"""A sparse raw file in the staging area, for the stores we do not own.

In a request that mixes RBD stores with others (file, swift, ...), Glance
uploads to the others itself from a staged file; they must get the same raw
bytes, so the copy loop writes this file alongside the RBD images.
"""

import os

from glance_sparse_import import errors
from glance_sparse_import.targets import base


class RawFileTarget(base.Target):
    """Write the raw disk into ``path``; holes stay holes."""

    name = 'staging'

    def __init__(self, path, size):
        self.path = path
        self.size = size
        self._fd = None

    @property
    def url(self):
        return 'file://%s' % self.path

    def open(self):
        try:
            self._fd = os.open(self.path,
                               os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            os.ftruncate(self._fd, self.size)
        except OSError as e:
            raise errors.StoreError('cannot create the raw staging file: %s'
                                    % e.strerror)

    def write(self, offset, data):
        view = memoryview(data)
        while view:
            try:
                n = os.pwrite(self._fd, view, offset)
            except OSError as e:
                raise errors.StoreError('cannot write the raw staging file: '
                                        '%s' % e.strerror)
            view = view[n:]
            offset += n

    def finish(self):
        fd, self._fd = self._fd, None
        if fd is not None:
            os.close(fd)

    def remove(self):
        self.finish()
        try:
            os.unlink(self.path)
        except FileNotFoundError:
            pass
