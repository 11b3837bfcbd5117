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

"""A target that takes writes and keeps nothing.

``glance-sparse-import inspect`` reads and hashes an image through it,
as ``nbdcopy`` does with its null destination.
"""

from glance_sparse_import.targets import base


class NullTarget(base.Target):
    """Discard every write; ``name`` labels it in messages."""

    def __init__(self, name='null', size=0):
        self.name = name
        self.size = size

    def write(self, offset, data):
        pass
