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

"""Exceptions raised by the plugin.

Their messages end up in the import task's message, which the image owner
reads with ``glance task-show``: they must say what went wrong without
leaking paths of the host, keys or tokens.
"""


class SparseImportError(Exception):
    """Base class of every error the plugin raises on purpose."""


class InvalidImage(SparseImportError):
    """The staged data is unsafe, corrupt or not what it claims to be."""


class SourceError(SparseImportError):
    """Reading the staged image failed."""


class StoreError(SparseImportError):
    """Writing to a Ceph target store failed."""


class QuotaExceeded(SparseImportError):
    """Storing the image would exceed a size limit or quota."""


class SignatureError(SparseImportError):
    """The image signature could not be verified."""


class Cancelled(SparseImportError):
    """The import was cancelled while copying (see native.supervise)."""
