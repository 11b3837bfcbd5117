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

"""What the signature covers: every byte of the staged file."""

import hashlib
import os

import pytest

from glance_sparse_import import signature

MiB = 1024 ** 2


@pytest.mark.parametrize('layout', [
    [],                                      # empty
    [(0, b'x' * 100)],                       # small, all data
    [(5 * MiB, b'tail')],                    # hole then data
    [(0, b'head'), (9 * MiB + 7, b'')],      # data then a trailing hole
    [(1, b'a'), (4 * MiB, b'b' * MiB), (13 * MiB, b'c')],
])
def test_chunks_are_the_file(tmp_path, layout):
    path = str(tmp_path / 'sparse')
    with open(path, 'wb') as f:
        for offset, data in layout:
            f.seek(offset)
            f.write(data)
            f.truncate(max(f.tell(), os.fstat(f.fileno()).st_size))
    with open(path, 'rb') as f:
        expected = hashlib.sha256(f.read()).hexdigest()
    got = hashlib.sha256()
    for piece in signature._stream(path):
        got.update(piece)
    assert got.hexdigest() == expected


def test_unsigned_images_are_not_verified(tmp_path):
    props = {'img_signature': 'x', 'img_signature_hash_method': 'SHA-256',
             'img_signature_key_type': 'RSA-PSS'}
    # Without the certificate property stock Glance verifies nothing.
    assert signature.verify(None, props, '/nonexistent', 'id') is False
