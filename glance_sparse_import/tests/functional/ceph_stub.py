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

"""Stand-ins for the distribution's bindings, for building a flow only.

Interpreters other than the distribution's have no rados, rbd and nbd
bindings. While Glance builds an import flow, the only Ceph call is
glance_store's RBD driver asking the cluster for its fsid when it
configures a store; that is all these modules answer, and nbd is not used
at all. Anything else fails loudly.
"""

import importlib.util
import sys
import types

FSID = '6c1b8f0e-0000-4000-8000-00000000f10d'


class Error(Exception):
    pass


class ObjectNotFound(Error):
    pass


class Rados(object):
    """A cluster handle that can only connect and tell its fsid."""

    def __init__(self, conffile=None, rados_id=None, **kwargs):
        self.conffile = conffile
        self.rados_id = rados_id

    def conf_set(self, option, value):
        pass

    def connect(self, timeout=None):
        pass

    def get_fsid(self):
        return FSID

    def shutdown(self):
        pass

    def __getattr__(self, name):
        raise AssertionError('rados.Rados.%s called while building a flow'
                             % name)


def _refuse(module):
    def __getattr__(name):
        raise AssertionError('%s.%s used while building a flow'
                             % (module, name))
    return __getattr__


def install():
    """Put the stand-ins in ``sys.modules`` before anything imports them."""
    rados = types.ModuleType('rados')
    rados.Rados, rados.Error, rados.ObjectNotFound = (
        Rados, Error, ObjectNotFound)
    rados.__getattr__ = _refuse('rados')
    rbd = types.ModuleType('rbd')
    rbd.__getattr__ = _refuse('rbd')
    sys.modules['rados'] = rados
    sys.modules['rbd'] = rbd
    # No cluster here, so rados and rbd always; nbd only where missing.
    if importlib.util.find_spec('nbd') is None:
        nbd = types.ModuleType('nbd')
        nbd.__getattr__ = _refuse('nbd')
        sys.modules['nbd'] = nbd
