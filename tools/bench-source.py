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

"""Rough read throughput of the staged-image sources. Run by hand.

    bench-source.py IMAGE FORMAT [--in-flight 1 8] [--request-size MiB]
                    [--cache writeback|none] [--aio threads|io_uring|native]

Prints, per setting, the time to read the whole image through the source
and two rates: virtual bytes (zero runs included) and data bytes read, per
second. Not a test: timings depend on the machine and its load.
"""

import argparse
import time

from oslo_utils import units

from glance_sparse_import import inspection
from glance_sparse_import.sources import checked
from glance_sparse_import.sources import nbd
from glance_sparse_import.sources import raw


def read_all(source):
    data = 0
    start = time.monotonic()
    with source:
        for chunk in source.chunks():
            if chunk.data is not None:
                data += chunk.length
        size = source.size
    return time.monotonic() - start, size, data


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('image')
    parser.add_argument('format', help='disk format as Glance names it')
    parser.add_argument('--in-flight', type=int, nargs='+', default=[1, 8])
    parser.add_argument('--request-size', type=int, default=4,
                        help='MiB (default 4)')
    parser.add_argument('--cache', default=nbd.CACHE_MODE)
    parser.add_argument('--aio', default=nbd.AIO_MODE)
    parser.add_argument('--limit', type=int, default=2048,
                        help='qemu-nbd address space limit, MiB')
    args = parser.parse_args()

    nbd.CACHE_MODE = args.cache
    nbd.AIO_MODE = args.aio
    info = inspection.inspect_image(args.image, args.format, units.Pi)
    request_size = args.request_size * units.Mi
    print('%s: %s, virtual %.2f GiB, file %.2f GiB' % (
        args.image, info.format, info.virtual_size / units.Gi,
        info.actual_size / units.Gi))
    for in_flight in args.in_flight:
        if info.qemu_format is None:
            source = raw.RawSource(args.image, request_size)
        else:
            source = checked.CheckedSource(nbd.NbdSource(
                args.image, info.qemu_format, request_size, in_flight,
                args.limit))
        elapsed, size, data = read_all(source)
        print('in-flight %2d cache=%s aio=%s: %6.2f s  virtual %7.0f MB/s'
              '  data %6.0f MB/s (%.2f GB)' % (
                  in_flight, args.cache, args.aio, elapsed,
                  size / elapsed / 1e6, data / elapsed / 1e6, data / 1e9))
        if info.qemu_format is None:
            break


if __name__ == '__main__':
    main()
