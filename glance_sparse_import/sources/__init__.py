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

"""Readers of the staged image, one per kind of staged file."""

from oslo_config import cfg

# Registers [wsgi] python_interpreter where Glance has it.
from glance_sparse_import import glance_compat  # noqa: F401
from glance_sparse_import.sources.checked import CheckedSource
from glance_sparse_import.sources.nbd import NbdSource
from glance_sparse_import.sources.raw import RawSource

CONF = cfg.CONF


def open_source(path, image_info, conf, python_exec=None):
    """Return an unopened source for the staged image at path.

    :param image_info: the ImageInfo that inspection.inspect_image returned
    :param conf: the configuration, or its sparse_rbd_import group
    :param python_exec: interpreter that applies qemu-nbd's process limits;
                        Glance's ``[wsgi] python_interpreter`` if None
    """
    try:
        opts = conf.sparse_rbd_import
    except cfg.NoSuchOptError:
        opts = conf
    if image_info.qemu_format is None:
        return RawSource(path, opts.request_size)
    return CheckedSource(NbdSource(
        path, image_info.qemu_format, opts.request_size,
        opts.requests_in_flight, opts.qemu_address_space_limit,
        python_exec=python_exec or CONF.wsgi.python_interpreter))
