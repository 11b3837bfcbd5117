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
named by a ``.pth`` file. For Python 3.9, which Debian 12 lacks, they come
from Debian 11's packages that tools/fetch-py39-bindings.sh unpacked into
the checkout.
"""

import glob
import os
import subprocess
import sys
import sysconfig

DIST = '/usr/lib/python3/dist-packages'
CACHE = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(
    __file__))), '.cache', 'bindings-py%d%d')
# The extension modules are built for one Python version each; nbd.py must
# be the one of the same libnbd as its libnbdmod.
PATTERNS = ('rados.cpython-%d%d-*.so', 'rbd.cpython-%d%d-*.so',
            'libnbdmod.cpython-%d%d-*.so', 'nbd.py')


def main():
    version = sys.version_info[:2]
    patterns = [p % version if '%' in p else p for p in PATTERNS]
    folders = [DIST, CACHE % version]
    source = next((d for d in folders
                   if glob.glob(os.path.join(d, patterns[0]))), None)
    if source is None:
        sys.exit('no rados binding for Python %d.%d in %s: install '
                 'python3-rados, python3-rbd and python3-libnbd, or for '
                 'Python 3.9 run tools/fetch-py39-bindings.sh'
                 % (version + (' or '.join(folders),)))
    site = sysconfig.get_paths()['purelib']
    folder = os.path.join(sys.prefix, 'system-bindings')
    os.makedirs(folder, exist_ok=True)
    for pattern in patterns:
        found = glob.glob(os.path.join(source, pattern))
        if not found:
            sys.exit('missing %s in %s' % (pattern, source))
        for path in found:
            link = os.path.join(folder, os.path.basename(path))
            if os.path.lexists(link):
                os.unlink(link)
            os.symlink(path, link)
    with open(os.path.join(site, 'system-bindings.pth'), 'w') as f:
        f.write(folder + '\n')
    # An extension module built elsewhere may not load against this
    # system's libraries: say so now, not in the middle of a test.
    subprocess.run([sys.executable, '-c', 'import rados, rbd, nbd'],
                   check=True)


if __name__ == '__main__':
    main()
