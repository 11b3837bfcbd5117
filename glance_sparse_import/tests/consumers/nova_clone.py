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

"""Clone a Glance image into an instance disk the way nova-compute does.

Run as ``python -m glance_sparse_import.tests.consumers.nova_clone
NOVA_CONF IMAGE_ID:DISK_NAME...``; prints a JSON list, one object per
disk.

Nova's own code does every step: the libvirt RBD image backend,
``nova.virt.libvirt.imagebackend.Rbd``, asks the Glance API for the image
with its locations (``nova.image.glance``), picks the first location
``nova.storage.rbd_utils.RBDDriver.is_cloneable`` accepts and clones it.
A process of its own keeps Nova's global configuration apart from Glance's
and Cinder's.
"""

import json
import sys

import nova.conf
from nova import context
from nova.image import glance
from nova.virt.libvirt import imagebackend

CONF = nova.conf.CONF


def main(conf_path, pairs):
    CONF(['--config-file', conf_path], project='nova')
    # The test bed's Glance takes any token; Nova's Glance client refuses
    # to send a request without one.
    ctx = context.RequestContext(user_id='testbed', project_id='testbed',
                                 auth_token='testbed', is_admin=True)
    pool = CONF.libvirt.images_rbd_pool
    results = []
    for image_id, disk_name in pairs:
        backend = imagebackend.Rbd(path='%s/%s' % (pool, disk_name))
        backend.clone(ctx, image_id)
        # What clone() looked at, asked again to report it.
        image_meta = glance.API().get(ctx, image_id, include_locations=True)
        results.append({
            'locations': image_meta['locations'],
            'cloneable': [backend.driver.is_cloneable(loc, image_meta)
                          for loc in image_meta['locations']],
            'disk_format': image_meta['disk_format'],
            'rbd_name': backend.rbd_name,
            'parent': list(backend.driver.parent_info(backend.rbd_name,
                                                      pool=pool)),
        })
    json.dump(results, sys.stdout)


if __name__ == '__main__':
    main(sys.argv[1], [arg.split(':') for arg in sys.argv[2:]])
