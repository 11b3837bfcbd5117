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

"""Messages for valid VMDKs that an older format inspector reads as raw."""

import bz2
import os
import struct
import subprocess

import pytest

from glance_sparse_import import errors
from glance_sparse_import import glance_compat as compat
from glance_sparse_import import inspection
from glance_sparse_import.tests.real_images import corpus
from glance_sparse_import.tests.testbed import series
from glance_sparse_import import vmdk

MiB = 1024 ** 2
# A VMDK 3 sparse extent from qemu's iotests, grain directory in a footer.
FOOTER_VMDK = 'qemu-iotest-version3.vmdk.bz2'


@pytest.fixture(scope='module')
def footer_vmdk(tmp_path_factory):
    path = str(tmp_path_factory.mktemp('vmdk') / 'footer.vmdk')
    with bz2.open(os.path.join(corpus.ROOT, FOOTER_VMDK)) as src, \
            open(path, 'wb') as dst:
        dst.write(src.read())
    return path


def _qemu_vmdk(tmp_path, subformat):
    raw = str(tmp_path / 'disk.raw')
    with open(raw, 'wb') as f:
        f.truncate(4 * MiB)
    path = str(tmp_path / ('%s.vmdk' % subformat))
    subprocess.run(['qemu-img', 'convert', '-O', 'vmdk', '-o',
                    'subformat=%s' % subformat, raw, path], check=True)
    return path


def test_descriptor_file_is_named(tmp_path):
    why = vmdk.explain(_qemu_vmdk(tmp_path, 'monolithicFlat'))
    assert 'VMDK descriptor file (createType monolithicFlat)' in why
    assert 'separate extent files' in why


def test_footer_grain_directory_is_named(footer_vmdk):
    with open(footer_vmdk, 'rb') as f:
        head = f.read(512)
    assert struct.unpack_from('<Q', head, 56)[0] == vmdk.GD_AT_END
    why = vmdk.explain(footer_vmdk)
    assert 'grain directory is in a footer' in why
    assert 'subformat=streamOptimized' in why


@pytest.mark.parametrize('subformat', ['monolithicSparse',
                                       'streamOptimized'])
def test_readable_vmdks_get_no_explanation(tmp_path, subformat):
    # qemu-img writes the grain directory at the start of both.
    assert vmdk.explain(_qemu_vmdk(tmp_path, subformat)) is None


def test_raw_gets_no_explanation(tmp_path):
    path = str(tmp_path / 'disk.raw')
    with open(path, 'wb') as f:
        f.write(b'\1' * 4096)
    assert vmdk.explain(path) is None


@pytest.mark.series_core
def test_footer_vmdk_imported_or_refused_by_name(footer_vmdk):
    """A footer VMDK passes or is refused naming what it is.

    Where this Glance's inspector reads the footer the image passes; where
    it reads the file as raw, the refusal says what it really is.
    """
    series.current()
    try:
        readable = str(compat.detect_file_format(footer_vmdk)) == 'vmdk'
    except Exception:
        readable = False
    if readable:
        info = inspection.inspect_image(footer_vmdk, 'vmdk', 1 << 40)
        assert (info.format, info.virtual_size) == ('vmdk', 16 << 30)
    else:
        with pytest.raises(errors.InvalidImage) as raised:
            inspection.inspect_image(footer_vmdk, 'vmdk', 1 << 40)
        assert 'grain directory is in a footer' in str(raised.value)
        assert 'content is raw' not in str(raised.value)
