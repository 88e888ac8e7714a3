"""Schemathesis hooks of scripts/schemathesis.sh (loaded through schemathesis.toml).

Every check runs (`--checks all`). One kind of failure is dropped here, for the reason
docs/API-TESTING.md gives ("Exceptions"); the run's summary counts it as "dropped by
filter_failure". Nothing else is filtered.
"""

import schemathesis
from schemathesis.openapi.checks import UseAfterFree


@schemathesis.hook
def filter_failure(context, failure, case, response):
    operation = case.operation
    # GET /api/dithers/{uuid} after DELETE /api/dithers/{uuid}: that DELETE empties the image's list
    # of dithers, it does not delete a resource, so a 200 with no items is the designed answer.
    if (isinstance(failure, UseAfterFree) and operation.method.upper() == "GET"
            and operation.path == "/api/dithers/{uuid}"):
        return False
    return True
