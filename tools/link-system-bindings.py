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

"""Expose Debian's rados, rbd and nbd bindings to the running virtualenv.

The bindings exist only as distribution packages built for /usr/bin/python3.
``--system-site-packages`` would also drag in Debian's old pyOpenSSL, which
breaks oslo.service, so only these modules are linked into a private folder
named by a ``.pth`` file.
"""

import glob
import os
import sys
import sysconfig

DIST = '/usr/lib/python3/dist-packages'
PATTERNS = ('rados.cpython-*.so', 'rbd.cpython-*.so',
            'libnbdmod.cpython-*.so', 'nbd.py')


def main():
    site = sysconfig.get_paths()['purelib']
    folder = os.path.join(sys.prefix, 'system-bindings')
    os.makedirs(folder, exist_ok=True)
    for pattern in PATTERNS:
        found = glob.glob(os.path.join(DIST, pattern))
        if not found:
            sys.exit('missing %s in %s: install python3-rados, python3-rbd '
                     'and python3-libnbd' % (pattern, DIST))
        for path in found:
            link = os.path.join(folder, os.path.basename(path))
            if os.path.lexists(link):
                os.unlink(link)
            os.symlink(path, link)
    with open(os.path.join(site, 'system-bindings.pth'), 'w') as f:
        f.write(folder + '\n')


if __name__ == '__main__':
    main()
