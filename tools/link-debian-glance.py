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

"""Put Debian 12's packaged Glance in front of the running virtualenv.

tools/fetch-debian-glance.sh unpacked Debian's glance-api, python3-glance,
their dependencies, Debian's glance and openstack clients and Debian's
uWSGI into .cache/debian-glance/root. This writes PINS beside it
(``name===version`` of every Python distribution there, what the tests
compare the environment with), names that dist-packages in a
``.pth`` file of the virtualenv (which, built with the system's site
packages, also sees Debian's rados and rbd bindings), and puts next to its
interpreter the commands the test bed starts, each running Debian's own
script or binary: ``glance-api`` (eventlet), ``glance-manage``,
``glance-wsgi-api``, ``glance``, ``openstack`` and ``uwsgi`` (Debian's
uwsgi-core with its http and python3 plugins).
"""

import email.parser
import glob
import os
import stat
import sys
import sysconfig

ROOT = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(
    __file__))), '.cache', 'debian-glance', 'root')
SCRIPTS = ('glance-api', 'glance-manage', 'glance', 'openstack')
UWSGI_PLUGINS = 'http,python%d%d' % sys.version_info[:2]


def _write_script(path, text):
    if os.path.lexists(path):
        os.unlink(path)
    with open(path, 'w') as f:
        f.write(text)
    os.chmod(path, os.stat(path).st_mode | stat.S_IXUSR | stat.S_IXGRP |
             stat.S_IXOTH)


def write_pins(site):
    pins = []
    for info in sorted(glob.glob(os.path.join(site, '*.egg-info')) +
                       glob.glob(os.path.join(site, '*.dist-info'))):
        meta = info
        if os.path.isdir(info):
            meta = os.path.join(info, 'METADATA' if info.endswith(
                '.dist-info') else 'PKG-INFO')
        with open(meta, errors='replace') as f:
            head = email.parser.Parser().parse(f, headersonly=True)
        pins.append('%s===%s\n' % (head['Name'], head['Version']))
    with open(os.path.join(os.path.dirname(ROOT), 'PINS'), 'w') as f:
        f.writelines(pins)


def main():
    site = os.path.join(ROOT, 'usr', 'lib', 'python3', 'dist-packages')
    if not os.path.isdir(os.path.join(site, 'glance')):
        sys.exit('no Debian Glance in %s: run tools/fetch-debian-glance.sh'
                 % ROOT)
    write_pins(site)
    with open(os.path.join(sysconfig.get_paths()['purelib'],
                           'debian-glance.pth'), 'w') as f:
        f.write(site + '\n')
    bindir = os.path.dirname(sys.executable)
    for name in SCRIPTS:
        _write_script(os.path.join(bindir, name),
                      '#!/bin/sh\nexec "%s" "%s" "$@"\n'
                      % (sys.executable, os.path.join(ROOT, 'usr', 'bin',
                                                      name)))
    # uWSGI runs this one as a file (wsgi-file).
    link = os.path.join(bindir, 'glance-wsgi-api')
    if os.path.lexists(link):
        os.unlink(link)
    os.symlink(os.path.join(ROOT, 'usr', 'bin', 'glance-wsgi-api'), link)
    arch = sysconfig.get_config_var('MULTIARCH')
    libdirs = ':'.join(os.path.join(ROOT, d, arch) for d in ('lib', 'usr/lib'))
    _write_script(
        os.path.join(bindir, 'uwsgi'),
        '#!/bin/sh\nLD_LIBRARY_PATH="%s${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}" '
        'exec "%s" --plugins-dir "%s" --plugins %s "$@"\n'
        % (libdirs, os.path.join(ROOT, 'usr', 'bin', 'uwsgi-core'),
           os.path.join(ROOT, 'usr', 'lib', 'uwsgi', 'plugins'),
           UWSGI_PLUGINS))


if __name__ == '__main__':
    main()
