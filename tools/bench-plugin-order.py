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

"""What each image_import_plugins order costs: one import per list.

Run it with the interpreter of the virtualenv that holds Glance, the glance
CLI, uWSGI and this package:

    VENV/bin/python tools/bench-plugin-order.py [--size 8G] [--data 750M]
        [--repeat 3]

Builds a compressed qcow2 (an ext4 filesystem holding --data bytes of
files), starts a throwaway Ceph cluster and one Glance API per plugin list
(stock image_conversion alone, then the orders deployment tools write),
stages the image on each and times POST /v2/images/<id>/import until the
task ends; each import must end active with stock's checksum. With
--repeat N the lists take turns N times (so a passing load hits them
alike) and the median is printed.
"""

import argparse
import os
import statistics
import sys
import time

from glance_sparse_import.tests.testbed import bench
from glance_sparse_import.tests.testbed import cli
from glance_sparse_import.tests.testbed import fixtures
from glance_sparse_import.tests.testbed import images

LISTS = (
    ['image_conversion'],
    ['sparse_rbd_import'],
    ['sparse_rbd_import', 'image_conversion'],
    ['image_decompression', 'sparse_rbd_import', 'image_conversion'],
    ['image_conversion', 'sparse_rbd_import'],
)


def timed(api, path):
    """Seconds from the import call to the task's end; the image."""
    glance = cli.GlanceCLI(api)
    image_id = bench.stage_image(glance, path, 'qcow2', 'order')
    os.sync()
    started = time.monotonic()
    status, body = api.request(
        'POST', '/v2/images/%s/import' % image_id,
        {'method': {'name': 'glance-direct'}})
    if status != 202:
        raise bench.BenchError('import call: %s %s' % (status, body))
    while True:
        tasks = glance.task_list_for_image(image_id)
        if tasks and tasks[0]['status'] in ('success', 'failure'):
            break
        time.sleep(0.1)
    seconds = time.monotonic() - started
    if tasks[0]['status'] != 'success':
        raise bench.BenchError('import with %s failed: %s\n%s' % (
            api.plugins, tasks[0]['message'], glance.explain(image_id)))
    return seconds, glance.get_image(image_id)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--size', default='8G', type=bench.parse_size,
                        help='virtual size (default 8G)')
    parser.add_argument('--data', default='750M', type=bench.parse_size,
                        help='bytes of files in the filesystem '
                             '(default 750M)')
    parser.add_argument('--repeat', default=1, type=int,
                        help='imports per list, in turns; the median is '
                             'printed (default 1)')
    args = parser.parse_args(argv)
    with fixtures.temp_dir('order-images') as workdir:
        path = images.ImageBuilder(workdir).qcow2(args.size, args.data,
                                                  compressed=True)
        with fixtures.running_cluster('ceph') as cluster, \
                fixtures.api_factory() as factory:
            apis = [factory({'ceph': cluster}, 'ceph', plugins=plugins)
                    for plugins in LISTS]
            times = [[] for _ in LISTS]
            expected = None
            for _ in range(args.repeat):
                for api, seconds in zip(apis, times):
                    took, image = timed(api, path)
                    expected = expected or image['checksum']
                    if image['checksum'] != expected:
                        raise bench.BenchError('checksum differs from stock')
                    seconds.append(took)
                    cluster.purge_image(image['id'])
            for plugins, seconds in zip(LISTS, times):
                print('%-66s %7.1f s  (%s)' % (
                    plugins, statistics.median(seconds),
                    ', '.join('%.1f' % t for t in seconds)))
    return 0


if __name__ == '__main__':
    sys.exit(main())
