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

"""A source whose raw stream is checked to be plain raw.

Used for every image qemu converts, as Glance checks the file that
``qemu-img convert`` writes; see ``inspection.checked_output``.
"""

from glance_sparse_import import inspection


class CheckedSource:
    """A source wrapped so its chunks() are checked.

    Iterating raises InvalidImage when the stream is not plain raw.
    """

    def __init__(self, source):
        self._source = source

    def __enter__(self):
        self._source.__enter__()
        return self

    def __exit__(self, *exc_info):
        return self._source.__exit__(*exc_info)

    def close(self):
        self._source.close()

    @property
    def size(self):
        return self._source.size

    def chunks(self):
        return inspection.checked_output(self._source.chunks())
