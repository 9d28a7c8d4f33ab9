"""The parts of SendEmailWorkflow (``workflows/send.py``), one concern a module.

``send.py`` holds the workflow itself (its run, from request to delivery, its handlers, and the
check of a decision's proof); the steps it takes live here, as functions over one state, the
send's record (the workflow's base class), which each takes as ``send``:

- ``record.py``        the send's state, audit events and the SendState it answers with
- ``decisions.py``     whether a human's decision counts (window, approver, size)
- ``announcements.py`` notices and Slack messages for humans, as abandoned child workflows
- ``delivery.py``      admission and delivery through the one activity that hands mail over
- ``provider_hold.py`` waiting for a provider's own human when the provider holds the email
- ``options.py``       how the activities are called: timeouts, retries, deadlines, limits

``decisions.py`` and ``options.py`` are pure (no workflow API, no clock): the sandbox passes them
through; the others, which call Temporal's workflow APIs, are re-imported, guarded, per send.

Temporal knows the workflow by its type name, ``SendEmailWorkflow``; these modules are no part
of that name, so histories replay whichever module a step is in.
"""
