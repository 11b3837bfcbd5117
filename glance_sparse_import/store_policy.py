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

"""What a failed target store does to a multi-store copy.

The rules are those of Glance's own import flow
(``glance/async_/flows/api_image_import.py``), which the plugin takes over
for the RBD stores it writes, and which ``copy.Copy`` applies during the
data pass:

- ``all_stores_must_succeed`` (the import request's flag, true by
  default): the first store that fails fails the import, as a failed
  ``_ImportToStore`` task fails Glance's flow;
- otherwise a failed store is dropped: its data is removed, it goes to
  ``os_glance_failed_import`` and the import goes on with the others, as
  ``_ImportToStore`` does when it only marks the store failed;
- a required member (the raw staging file that Glance's own uploads
  read) fails the import whatever the flag: nothing can go on without it;
- once every target is gone the import has failed, unless stores outside
  the copy (``others``: Glance's own uploads) can still succeed.
"""

from glance_sparse_import import errors


class StorePolicy(object):
    """Decide whether a copy goes on when targets fail.

    :param all_stores_must_succeed: the import request's flag
    :param required: targets whose failure fails the copy in any case
    :param others: whether stores outside the copy can still make the
                   import succeed when every target has failed
    """

    def __init__(self, all_stores_must_succeed=True, required=(),
                 others=False):
        self.all_stores_must_succeed = all_stores_must_succeed
        self._required = list(required)
        self.others = others

    def require(self, target):
        """Make ``target`` a required member."""
        self._required.append(target)

    def is_required(self, target):
        return any(t is target for t in self._required)

    def may_drop(self, target):
        """Whether the copy may go on without ``target`` once it failed."""
        return not self.all_stores_must_succeed and not self.is_required(
            target)

    def check(self, failed):
        """Raise unless the copy may go on without every target of ``failed``.

        :param failed: ``{target: StoreError}``, the targets that failed one
                       step (open, write, finish)
        :raises StoreError: a required member's own error, else, with
                            ``all_stores_must_succeed``, one naming every
                            failure
        """
        for target, error in failed.items():
            if self.is_required(target):
                raise error
        if failed and self.all_stores_must_succeed:
            raise errors.StoreError('; '.join(str(e) for e in
                                              failed.values()))

    def check_left(self, live, failed):
        """Raise when no target is left to write.

        :param live: the targets still written
        :param failed: ``{target: StoreError}`` of every dropped target
        :raises StoreError: every target failed
        """
        if not live:
            raise errors.StoreError(
                'every target store failed: %s' %
                '; '.join(str(e) for e in failed.values()))

    def may_lose_every_target(self):
        """Whether the import may go on with no target of the copy left.

        Only when failures are tolerated, no member is required and
        stores outside the copy remain to be written.
        """
        return (not self.all_stores_must_succeed and not self._required and
                self.others)
