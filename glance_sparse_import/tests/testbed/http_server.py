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

"""A local HTTP server for web-download imports."""

import functools
import http.server
import os
import threading
import urllib.parse


class _QuietHandler(http.server.SimpleHTTPRequestHandler):

    def log_message(self, format, *args):
        pass


class FileServer(object):
    """Serve ``directory`` on 127.0.0.1 at a free port, in a thread."""

    def __init__(self, directory):
        self.directory = os.path.abspath(directory)
        self._server = None
        self._thread = None

    def __enter__(self):
        self.start()
        return self

    def __exit__(self, *exc_info):
        self.stop()

    @property
    def port(self):
        return self._server.server_address[1]

    def url(self, path):
        """URL of a file, given relative to the directory or absolute."""
        if os.path.isabs(path):
            path = os.path.relpath(path, self.directory)
        return 'http://127.0.0.1:%d/%s' % (self.port,
                                           urllib.parse.quote(path))

    def start(self):
        handler = functools.partial(_QuietHandler, directory=self.directory)
        self._server = http.server.ThreadingHTTPServer(('127.0.0.1', 0),
                                                       handler)
        self._thread = threading.Thread(target=self._server.serve_forever,
                                        daemon=True)
        self._thread.start()

    def stop(self):
        if self._server is None:
            return
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()
        self._server = None
