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

"""What every staged-image reader provides.

A source is a context manager with a ``size`` (the virtual size of the raw
disk it reads) and ``chunks()``, which yields ``Chunk`` tuples that cover
``[0, size)`` contiguously and in order. ``data`` is ``None`` for a run that
reads as zeros (a hole, an unallocated cluster, a zero cluster); such a run
may be of any length. Otherwise ``data`` is a bytes-like object of
``length`` bytes, at most the source's request size, owned by the caller
from then on.
"""

import collections

Chunk = collections.namedtuple('Chunk', 'offset length data')


def requests(offset, end, request_size):
    """Split ``[offset, end)`` into (offset, length) reads.

    Reads end on multiples of ``request_size``, so with the default 4 MiB
    each one lands in a single RBD object: one OSD operation per write
    instead of two for an extent that starts mid-object.
    """
    while offset < end:
        n = min(request_size - offset % request_size, end - offset)
        yield offset, n
        offset += n
