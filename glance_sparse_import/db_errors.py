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

"""Which database errors are worth a later retry.

A lost connection, a deadlock, a lock wait that timed out, sqlite's
"database is locked": the same query may well succeed a few seconds later.
A constraint or data error will not.
"""

import sqlite3

from oslo_db import exception as db_exception
from sqlalchemy import exc as sqlalchemy_exc

# oslo.db's translations of errors that a retry can outlive.
_TRANSIENT = (db_exception.DBConnectionError, db_exception.DBDeadlock)
# oslo.db's translations that say the query itself is wrong.
_PERMANENT = (db_exception.DBDataError, db_exception.DBDuplicateEntry,
              db_exception.DBReferenceError, db_exception.DBConstraintError,
              db_exception.DBInvalidUnicodeParameter,
              db_exception.DBNonExistentTable,
              db_exception.DBNonExistentDatabase,
              db_exception.DBNotSupportedError)
# What the drivers raise for a lost server, a lock or a busy database.
_OPERATIONAL = (sqlalchemy_exc.OperationalError,
                sqlalchemy_exc.DisconnectionError,
                sqlalchemy_exc.TimeoutError,
                sqlite3.OperationalError)


def is_transient(exc):
    """Whether ``exc`` is a database error that may pass if retried.

    Looks through oslo.db's wrapping (``inner_exception``) and Python's
    exception chain.

    :param exc: the exception raised by a repository call
    :returns: bool
    """
    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if isinstance(exc, _PERMANENT):
            return False
        if isinstance(exc, _TRANSIENT + _OPERATIONAL):
            return True
        if isinstance(exc, db_exception.DBError):
            exc = exc.inner_exception or exc.__cause__ or exc.__context__
        else:
            exc = exc.__cause__ or exc.__context__
    return False
