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

"""Create a Cinder volume from a Glance image the way cinder-volume does.

Run as ``python -m glance_sparse_import.tests.consumers.cinder_clone
CINDER_CONF SIZE_GIB IMAGE_ID:VOLUME_ID...``; prints a JSON list, one
object per volume.

Cinder's own code does every step: ``GlanceImageService`` asks the Glance
API for the image's locations (``GET /v2/images/ID/locations``, falling
back to the image's ``direct_url``) and metadata, as the create-volume
flow does, and the RBD volume driver, ``cinder.volume.drivers.rbd.
RBDDriver``, judges them with ``clone_image``. A process of its own keeps
Cinder's global configuration apart from Glance's and Nova's.
"""

import json
import sys

from cinder.common import config  # noqa: F401 (registers Cinder's options)
from cinder import context
from cinder import objects
from oslo_config import cfg

BACKEND = 'rbd1'


def main(conf_path, size_gib, pairs):
    # As cinder-volume does: the objects are registered before the volume
    # modules are imported (their annotations use them), and the driver
    # before the image service (imported first, it fails on a circular
    # import with image_utils).
    objects.register_all()
    from cinder.volume import configuration
    from cinder.volume.drivers import rbd
    from cinder.volume import manager
    from cinder.image import glance  # noqa: H306

    cfg.CONF(['--config-file', conf_path], project='cinder')
    ctx = context.get_admin_context()
    driver = rbd.RBDDriver(configuration=configuration.Configuration(
        manager.volume_backend_opts, config_group=BACKEND), host='testbed')
    driver.do_setup(ctx)
    driver.check_for_setup_error()
    image_service = glance.GlanceImageService()
    results = []
    for image_id, volume_id in pairs:
        # What cinder-volume's create flow hands the driver.
        image_location = image_service.get_location(ctx, image_id)
        image_meta = image_service.show(ctx, image_id)
        volume = objects.Volume(ctx, id=volume_id, size=size_gib,
                                volume_type=None, volume_type_id=None,
                                encryption_key_id=None, _name_id=None)
        model_update, cloned = driver.clone_image(
            ctx, volume, image_location, image_meta, image_service)
        results.append({
            'cloned': cloned,
            'model_update': model_update,
            'volume_name': volume.name,
            'direct_url': image_location[0],
            'locations': image_location[1],
            'disk_format': image_meta['disk_format'],
            'size': image_meta['size'],
        })
    json.dump(results, sys.stdout)


if __name__ == '__main__':
    main(sys.argv[1], int(sys.argv[2]),
         [arg.split(':') for arg in sys.argv[3:]])
