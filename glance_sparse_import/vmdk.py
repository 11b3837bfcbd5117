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

"""What a VMDK is, for a message when a format inspector cannot read it.

Older format inspectors (Glance 26's own, Glance 25's as Debian and Red
Hat backported it) read two kinds of valid VMDK as raw, so Glance, stock
and with this plugin, refuses them as "vmdk claimed, raw found". Neither
is raw; this says what they are. Nothing here decides whether an image
is imported.

VMDK layout: VMware's "Virtual Disk Format 5.0" specification, section
"Hosted Sparse Extent Header".
"""

import struct

SPARSE_MAGIC = b'KDMV'
DESCRIPTOR_MAGIC = b'# Disk DescriptorFile'
# gdOffset of a sparse extent header whose grain directory is in the
# footer, at the end of the file (streamOptimized writers, VMware's
# exports).
GD_AT_END = 0xffffffffffffffff
_GD_OFFSET = 56
_HEADER = 512


def _create_type(text):
    for line in text.splitlines():
        key, _, value = line.partition('=')
        if key.strip() == 'createType':
            return value.strip().strip('"')
    return None


def explain(path):
    """Why the VMDK at ``path`` reads as raw.

    None when the file looks like neither kind above.

    :returns: a sentence for the task message, naming the kind and the fix
    :raises OSError: ``path`` cannot be read
    """
    with open(path, 'rb') as f:
        head = f.read(_HEADER)
    if head.startswith(DESCRIPTOR_MAGIC):
        create_type = _create_type(head.decode('ascii', 'replace'))
        return ('Image claimed to be vmdk is a VMDK descriptor file '
                '(createType %s): its data is in separate extent files, '
                'which an image upload cannot carry. Upload a one-file '
                'VMDK (qemu-img convert -O vmdk -o '
                'subformat=streamOptimized)' % (create_type or 'unknown'))
    if head.startswith(SPARSE_MAGIC) and len(head) >= _GD_OFFSET + 8:
        gd_offset, = struct.unpack_from('<Q', head, _GD_OFFSET)
        if gd_offset == GD_AT_END:
            return ('Image claimed to be vmdk is a VMDK sparse extent whose '
                    'grain directory is in a footer at the end of the file, '
                    "which this Glance's format inspector cannot read "
                    "(oslo.utils' inspector, which Glance uses from 2025.1 "
                    'on, can), so Glance refuses it as stock Glance does. '
                    'Convert it with qemu-img convert '
                    '-O vmdk -o subformat=streamOptimized, which writes the '
                    'grain directory at the start')
    return None
