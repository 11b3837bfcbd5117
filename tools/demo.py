#!/usr/bin/env python3
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

"""Demo: a sparse import end to end on a throwaway Ceph and Glance.

Starts a one-OSD Ceph cluster and a Glance API (uWSGI, sqlite) with
``sparse_rbd_import`` enabled, builds a realistic mostly-empty cloud image
(an ext4 filesystem filled from /usr in an 8 GiB disk, as compressed
qcow2), imports it with ``glance image-create-via-import`` and verifies it
as the operators' guide does: ``qemu-img info`` virtual size against the
sum of ``rbd -p images diff``. Everything is removed at the end.
"""

import argparse
import json
import os
import re
import sys
import time

from glance_sparse_import.tests.testbed import ceph
from glance_sparse_import.tests.testbed import cli
from glance_sparse_import.tests.testbed import fixtures
from glance_sparse_import.tests.testbed import glance_api
from glance_sparse_import.tests.testbed import images

MiB = 1024 ** 2
GiB = 1024 ** 3


def _size(text):
    units = {'K': 1024, 'M': MiB, 'G': GiB}
    text = text.strip().upper()
    if text[-1] in units:
        return int(float(text[:-1]) * units[text[-1]])
    return int(text)


def _step(text):
    print('\n==> %s' % text, flush=True)


def _show(cmd, output):
    print('$ %s' % cmd)
    print(output.rstrip())


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument('--virtual-size', default='8G')
    parser.add_argument('--data', default='750M',
                        help='bytes of /usr copied into the filesystem')
    parser.add_argument('--source', default='/usr')
    args = parser.parse_args()
    virtual, data = _size(args.virtual_size), _size(args.data)

    with fixtures.temp_dir('demo') as workdir:
        _step('Building an ext4 filesystem with %d MiB of %s in a %d GiB '
              'disk, as compressed qcow2' % (data // MiB, args.source,
                                             virtual // GiB))
        raw = images.make_ext4(os.path.join(workdir, 'disk.raw'), virtual,
                               data, source=args.source)
        qcow2 = images.to_qcow2(raw, os.path.join(workdir, 'cloud.qcow2'),
                                compressed=True)
        os.unlink(raw)
        info = images.qemu_img_info(qcow2)
        _show('qemu-img info cloud.qcow2',
              'file format: %s\nvirtual size: %d bytes\ndisk size: %d '
              'bytes' % (info['format'], info['virtual-size'],
                         info['actual-size']))

        _step('Starting a throwaway Ceph cluster and Glance API with '
              "image_import_plugins = ['sparse_rbd_import']")
        cluster = ceph.CephCluster(os.path.join(workdir, 'ceph'),
                                   memstore_bytes=4 * GiB)
        with cluster:
            api = glance_api.GlanceAPI(os.path.join(workdir, 'glance'),
                                       {'ceph': cluster}, 'ceph',
                                       plugins=['sparse_rbd_import'],
                                       debug=False)
            with api:
                glance = cli.GlanceCLI(api)
                _step('Importing')
                start = time.monotonic()
                result = glance.run(
                    'image-create-via-import', '--disk-format', 'qcow2',
                    '--container-format', 'bare', '--name', 'demo',
                    '--file', qcow2)
                image_id = cli.parse_table(result.stdout)['id']
                print('$ glance image-create-via-import --disk-format qcow2 '
                      '--container-format bare --name demo --file '
                      'cloud.qcow2')
                glance.wait_for_status(image_id, timeout=1800)
                elapsed = time.monotonic() - start
                print('active after %.1f s' % elapsed)

                _step('Verifying')
                shown = glance.run('image-show', image_id).stdout
                _show('glance image-show %s' % image_id, shown)
                extents = json.loads(cluster.rbd(
                    'diff', '--format', 'json', 'images/%s' % image_id))
                used = sum(e['length'] for e in extents)
                _show('rbd -p images diff %s | awk \'{ s += $2 } END '
                      '{ print s }\'' % image_id, str(used))
                snaps = cluster.rbd('snap', 'ls', '--all',
                                    'images/%s' % image_id)
                _show('rbd snap ls images/%s' % image_id, snaps)
                for line in api.log_text().splitlines():
                    match = re.search(r'Image \S+ imported sparse.*', line)
                    if match:
                        print('\nplugin: %s' % match.group(0))
                print('\nvirtual size %d bytes (%.2f GiB); stored in Ceph '
                      '%d bytes (%.2f GiB, %.1f%% of virtual)' % (
                          info['virtual-size'], info['virtual-size'] / GiB,
                          used, used / GiB,
                          100.0 * used / info['virtual-size']))
                ok = used < info['virtual-size'] / 2
                glance.image_delete(image_id)
    print('\nDEMO %s' % ('OK' if ok else 'FAILED: rbd diff not sparse'))
    return 0 if ok else 1


if __name__ == '__main__':
    sys.exit(main())
