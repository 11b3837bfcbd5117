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

"""The size limits Glance's upload path enforces, on the raw size.

Stock Glance enforces two limits while it uploads to a store, both on the
bytes it stores (the raw file after ``image_conversion``): ``image_size_cap``
(its reader stops there, and the database refuses a larger size) and the
legacy ``user_storage_quota`` (``glance.quota.ImageProxy.set_data``, checked
before the upload and again after it). The unified limits
(``use_keystone_limits``: ``image_size_total``, ``image_stage_total``,
``image_count_*``) are checked by the API calls and by Glance's ``get_flow``
before any plugin runs, never during the upload, and still are with this
plugin.
"""

from oslo_config import cfg
from oslo_log import log as logging

from glance_sparse_import import errors
from glance_sparse_import import glance_compat as compat

LOG = logging.getLogger(__name__)
CONF = cfg.CONF


def check(context, image_id, size):
    """Refuse storing ``size`` raw bytes as image ``image_id``.

    :raises: errors.QuotaExceeded
    """
    if size > CONF.image_size_cap:
        LOG.warning('Image %(image)s: raw size %(size)d exceeds '
                    'image_size_cap %(cap)d',
                    {'image': image_id, 'size': size,
                     'cap': CONF.image_size_cap})
        raise errors.QuotaExceeded(
            'Image size %d exceeds the image_size_cap of %d bytes'
            % (size, CONF.image_size_cap))
    try:
        # A no-op under use_keystone_limits, as in stock Glance.
        compat.check_quota(context, size, image_id)
    except compat.StorageQuotaFull as e:
        # Glance's own text: the size and the bytes remaining.
        raise errors.QuotaExceeded('user_storage_quota exceeded: %s' % e)
