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

"""Property-based tests of the extent and inspection code (hypothesis).

They run in CI with a bounded number of examples and a deadline, so they
also catch a hang or a slow path, not just a wrong answer.
"""

import os
import shutil
import subprocess
import tempfile

from hypothesis import given
from hypothesis import HealthCheck
from hypothesis import settings
from hypothesis import strategies as st
import pytest

from glance_sparse_import import copy
from glance_sparse_import import errors
from glance_sparse_import import inspection
from glance_sparse_import.sources import base
from glance_sparse_import.sources import raw

BLOCK = 4096
QUIET = [HealthCheck.too_slow, HealthCheck.function_scoped_fixture]
SETTINGS = settings(max_examples=60, deadline=5000,
                    suppress_health_check=QUIET)


@SETTINGS
@given(st.lists(st.tuples(st.booleans(), st.integers(1, 3 * BLOCK)),
                max_size=12),
       st.sampled_from([BLOCK, 2 * BLOCK]))
def test_nonzero_runs_match_brute_force(pieces, block):
    data = b''.join((b'\x01' if nz else b'\0') * n for nz, n in pieces)
    runs = list(copy.nonzero_runs(data, block, bytes(block)))
    expected = []
    for pos in range(0, len(data), block):
        end = min(pos + block, len(data))
        if any(data[pos:end]):
            if expected and expected[-1][1] == pos:
                expected[-1] = (expected[-1][0], end)
            else:
                expected.append((pos, end))
    assert runs == expected


@SETTINGS
@given(st.lists(st.tuples(st.booleans(), st.integers(1, 64)), min_size=1,
                max_size=10),
       st.integers(1, 5))
def test_raw_source_covers_the_file(tmp_path, layout, request_blocks):
    """Chunks tile the file in order and read back its exact bytes."""
    path = tmp_path / 'disk.raw'
    if path.exists():
        path.unlink()
    expected = bytearray()
    with open(path, 'wb') as f:
        for is_data, blocks in layout:
            length = blocks * BLOCK
            if is_data:
                piece = os.urandom(length)
                f.write(piece)
                expected += piece
            else:
                f.seek(length, os.SEEK_CUR)
                expected += bytes(length)
        f.truncate(len(expected))
    with raw.RawSource(str(path), request_blocks * BLOCK) as source:
        assert source.size == len(expected)
        got = bytearray()
        for chunk in source.chunks():
            assert chunk.offset == len(got)
            if chunk.data is None:
                got += bytes(chunk.length)
            else:
                assert len(chunk.data) == chunk.length
                assert chunk.length <= request_blocks * BLOCK
                # No read crosses a multiple of the request size.
                assert ((chunk.offset + chunk.length - 1) //
                        (request_blocks * BLOCK) ==
                        chunk.offset // (request_blocks * BLOCK))
                got += chunk.data
    assert got == expected


@SETTINGS
@given(st.integers(0, 1 << 40), st.integers(0, 1 << 16),
       st.integers(1, 1 << 12))
def test_requests_tile_the_range_on_request_boundaries(offset, length, size):
    pieces = list(base.requests(offset, offset + length, size))
    assert sum(n for _, n in pieces) == length
    pos = offset
    for start, n in pieces:
        assert start == pos and 0 < n <= size
        assert (start + n - 1) // size == start // size
        pos += n
    # Only the first and the last piece may be short.
    assert all(n == size for _, n in pieces[1:-1])


@pytest.fixture(scope='module')
def qcow2_image():
    workdir = tempfile.mkdtemp(prefix='gsi-prop-')
    path = os.path.join(workdir, 'base.qcow2')
    subprocess.run(['qemu-img', 'create', '-f', 'qcow2', path, '16M'],
                   check=True, capture_output=True)
    subprocess.run(['qemu-io', '-c', 'write -P 7 1M 128k', path],
                   check=True, capture_output=True)
    with open(path, 'rb') as f:
        yield f.read()
    shutil.rmtree(workdir)


@settings(max_examples=80, deadline=20000, suppress_health_check=QUIET)
@given(st.lists(st.tuples(st.integers(0, 1023),
                          st.binary(min_size=1, max_size=8)),
                min_size=1, max_size=6))
def test_mutated_qcow2_is_inspected_or_refused(tmp_path, qcow2_image,
                                               mutations):
    """Header and table bytes mutated at random: a clean verdict, always.

    Either the image passes every check with a sane size, or it is refused
    with one of the plugin's own errors; nothing else escapes and nothing
    hangs.
    """
    data = bytearray(qcow2_image)
    for offset, patch in mutations:
        # The first KiB holds the header; also hit the first tables.
        for pos in (offset, offset * 64):
            data[pos:pos + len(patch)] = patch
    path = tmp_path / 'mutated.qcow2'
    path.write_bytes(bytes(data))
    try:
        info = inspection.inspect_image(str(path), 'qcow2', 1 << 30)
    except (errors.InvalidImage, errors.SourceError) as e:
        assert str(tmp_path) not in str(e)
        return
    assert info.format == 'qcow2'
    assert 0 < info.virtual_size <= 1 << 30
