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

"""The real ``glance`` CLI, driven the way an operator types it."""

import json
import os
import pty
import signal
import subprocess
import time

from glance_sparse_import.tests.testbed import procs

NUMERIC_FIELDS = ('size', 'virtual_size', 'min_disk', 'min_ram')


class CLIError(Exception):
    """The CLI failed, or an image reached an unexpected status."""


class CLIResult(object):

    def __init__(self, args, returncode, stdout, stderr):
        self.args = args
        self.returncode = returncode
        self.stdout = stdout
        self.stderr = stderr

    @property
    def output(self):
        return self.stdout + self.stderr

    def __repr__(self):
        return '<CLIResult %s rc=%d>' % (' '.join(self.args), self.returncode)


def run_on_pty(cmd, env=None, timeout=600):
    """Run ``cmd`` with a pseudo-terminal as stdin; return a CLIResult.

    glanceclient refuses ``--file`` when stdin is not a terminal ("You
    cannot use both --file and stdin"). Output goes to pipes, so it carries
    no terminal line endings.
    """
    master, slave = pty.openpty()
    try:
        proc = subprocess.Popen(cmd, stdin=slave, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, env=env, text=True,
                                start_new_session=True)
    finally:
        os.close(slave)
    try:
        stdout, stderr = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        raise CLIError('%s timed out after %ss' % (' '.join(cmd), timeout))
    finally:
        os.close(master)
    return CLIResult(cmd, proc.returncode, stdout, stderr)


def parse_table(text):
    """Parse a ``Property | Value`` table printed by the CLI into a dict.

    Values the CLI printed as JSON (lists, dicts) come back decoded, sizes
    as ints, ``True``/``False``/``None`` as Python values. Rows wrapped by
    the table printer are joined again.
    """
    result = {}
    key = None
    for line in text.splitlines():
        line = line.strip()
        if not line.startswith('|') or not line.endswith('|'):
            continue
        cells = line[1:-1].split('|', 1)
        if len(cells) != 2:
            continue
        name, value = cells[0].strip(), cells[1].strip()
        if name == 'Property' and value == 'Value':
            continue
        if name:
            key = name
            result[key] = value
        elif key is not None:
            result[key] = (result[key] + ' ' + value).strip()
    return {k: _convert(k, v) for k, v in result.items()}


def _convert(key, value):
    if value in ('True', 'False'):
        return value == 'True'
    if value in ('None', 'Not available', ''):
        return None
    if key in NUMERIC_FIELDS and value.isdigit():
        return int(value)
    if value[:1] in '[{':
        try:
            return json.loads(value)
        except ValueError:
            pass
    return value


class GlanceCLI(object):
    """The ``glance`` CLI next to the running interpreter, bound to an API.

    :param api: a :class:`~.glance_api.GlanceAPI` (its ``client_env()``
        and ``request()`` are used)
    """

    def __init__(self, api, timeout=900):
        self.api = api
        self.timeout = timeout
        self.binary = procs.bin_path('glance')

    def run(self, *args, timeout=None, check=True):
        """Run ``glance ARGS...``; raise CLIError on failure if ``check``."""
        result = run_on_pty([self.binary] + [str(a) for a in args],
                            env=self.api.client_env(),
                            timeout=timeout or self.timeout)
        if check and result.returncode != 0:
            raise CLIError('%s exited %d:\n%s' % (
                ' '.join(result.args), result.returncode, result.output))
        return result

    def image_create_via_import(self, file=None, disk_format='raw',
                                container_format='bare', name=None,
                                stores=None, all_stores=None,
                                all_stores_must_succeed=None, uri=None,
                                import_method=None, properties=None,
                                extra_args=(), timeout=None, check=True):
        """``glance image-create-via-import``; return the printed image.

        ``file`` uses glance-direct, ``uri`` web-download. ``stores`` is a
        list of store names; ``all_stores_must_succeed`` maps to
        ``--allow-failure``. With ``check=False`` a failed command returns
        its CLIResult instead of raising.
        """
        args = ['image-create-via-import', '--disk-format', disk_format,
                '--container-format', container_format]
        if name:
            args += ['--name', name]
        if file is not None:
            args += ['--file', file]
        if uri is not None:
            args += ['--uri', uri]
            import_method = import_method or 'web-download'
        if import_method:
            args += ['--import-method', import_method]
        if stores:
            args += ['--stores', ','.join(stores)]
        if all_stores is not None:
            args += ['--all-stores', str(bool(all_stores))]
        if all_stores_must_succeed is not None:
            args += ['--allow-failure', str(not all_stores_must_succeed)]
        for key, value in (properties or {}).items():
            args += ['--property', '%s=%s' % (key, value)]
        args += list(extra_args)
        result = self.run(*args, timeout=timeout, check=check)
        if result.returncode != 0:
            return result
        image = parse_table(result.stdout)
        if 'id' not in image:
            raise CLIError('no image id in output of %s:\n%s' % (
                ' '.join(result.args), result.output))
        return image

    def image_show(self, image_id):
        """``glance image-show``, parsed into a dict."""
        result = self.run('image-show', '--max-column-width', '100000',
                          image_id)
        return parse_table(result.stdout)

    def image_delete(self, image_id, check=True):
        return self.run('image-delete', image_id, check=check)

    def get_image(self, image_id):
        """The image as JSON from the API (cheaper than image_show)."""
        status, body = self.api.request('GET', '/v2/images/%s' % image_id)
        if status != 200:
            raise CLIError('GET image %s: %s %s' % (image_id, status, body))
        return body

    def wait_for_status(self, image_id, statuses=('active',), timeout=300,
                        fail_statuses=('killed', 'deleted')):
        """Poll until the image status is one of ``statuses``; return it.

        Raises CLIError, with the image's tasks, when the image reaches a
        status in ``fail_statuses`` or the timeout passes.
        """
        if isinstance(statuses, str):
            statuses = (statuses,)
        deadline = time.monotonic() + timeout
        while True:
            image = self.get_image(image_id)
            if image['status'] in statuses:
                return image
            failed = (image['status'] in fail_statuses or
                      self._import_failed(image, statuses))
            if failed or time.monotonic() > deadline:
                raise CLIError('image %s is %s, wanted %s; %s' % (
                    image_id, image['status'], '/'.join(statuses),
                    self.explain(image_id)))
            time.sleep(0.5)

    def _import_failed(self, image, statuses):
        """Whether the image went back to queued after a failed import."""
        if image['status'] != 'queued' or 'queued' in statuses:
            return False
        tasks = self.task_list_for_image(image['id'])
        return bool(tasks) and all(t['status'] == 'failure' for t in tasks)

    def explain(self, image_id, log_chars=8000):
        """The image's tasks and the end of Glance's log, for a failure.

        Never raises: it runs while a test is already failing.
        """
        try:
            tasks = json.dumps(self.task_list_for_image(image_id), indent=1)
        except Exception as e:
            tasks = '(cannot list them: %s)' % e
        try:
            log = self.api.log_text()[-log_chars:]
        except Exception as e:
            log = '(cannot read it: %s)' % e
        return ('tasks of image %s: %s\nGlance log (last %d characters):\n'
                '%s' % (image_id, tasks, log_chars, log))

    def wait_task(self, image_id, known=(), timeout=300):
        """The image's task that is not in ``known``, once every task ended.

        ``known`` are the IDs of the image's tasks before the import or
        copy being waited for. Tasks are told apart by ID: Glance lists
        them in no set order and ``created_at`` has whole seconds, so an
        import and a copy right after it can tie.

        :raises AssertionError: no such task ended within ``timeout``
            seconds
        """
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            tasks = self.task_list_for_image(image_id)
            new = [t for t in tasks if t['id'] not in known]
            if len(new) == 1 and all(
                    t['status'] in ('success', 'failure') for t in tasks):
                return new[0]
            assert len(new) <= 1, new
            time.sleep(0.5)
        raise AssertionError('the task of %s did not end; %s'
                             % (image_id, self.explain(image_id)))

    def wait_task_id(self, task_id, timeout=60):
        """The task ``task_id`` once it has ended (``GET /v2/tasks/<id>``).

        Works after the image is deleted, when its task list is gone.

        :raises AssertionError: the task did not end within ``timeout``
            seconds, or the API did not answer 200
        """
        deadline = time.monotonic() + timeout
        while True:
            status, task = self.api.request('GET', '/v2/tasks/%s' % task_id)
            assert status == 200, task
            if task['status'] in ('success', 'failure'):
                return task
            assert time.monotonic() < deadline, task
            time.sleep(0.2)

    def task_ids(self, image_id):
        """IDs of the image's tasks so far, for ``wait_task(known=...)``."""
        return {t['id'] for t in self.task_list_for_image(image_id)}

    def task_list_for_image(self, image_id):
        """Tasks of an image, ``GET /v2/images/<id>/tasks``."""
        status, body = self.api.request('GET',
                                        '/v2/images/%s/tasks' % image_id)
        if status != 200:
            raise CLIError('GET tasks of %s: %s %s' % (image_id, status,
                                                       body))
        return body['tasks']
