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

"""An import plugin that always fails: the plugin listed after ours.

Registered for a test only, through a ``.dist-info`` on ``PYTHONPATH``
(:func:`install`), so that Glance's stevedore loads it by name from
``image_import_plugins`` as it loads any operator's plugin.
"""

import os

from taskflow.patterns import linear_flow as lf
from taskflow import task

NAME = 'always_fails'
MESSAGE = 'always_fails: this plugin fails every import'


class _Fail(task.Task):

    def execute(self):
        raise RuntimeError(MESSAGE)


def get_flow(**kwargs):
    """Glance's plugin entry point: a flow of one failing task."""
    return lf.Flow(NAME).add(_Fail('%s-%s' % (NAME, kwargs.get('task_id'))))


def install(directory):
    """Register the plugin in ``directory``; return it for ``PYTHONPATH``."""
    dist = os.path.join(directory, 'always_fails-0.dist-info')
    os.makedirs(dist, exist_ok=True)
    with open(os.path.join(dist, 'METADATA'), 'w') as f:
        f.write('Metadata-Version: 2.1\nName: always-fails\nVersion: 0\n')
    with open(os.path.join(dist, 'entry_points.txt'), 'w') as f:
        f.write('[glance.image_import.plugins]\n%s = %s:get_flow\n'
                % (NAME, __name__))
    return directory
