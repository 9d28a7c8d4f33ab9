"""The parts of SendEmailWorkflow (``workflows/send.py``), one concern a module.

``send.py`` holds the workflow itself (its run, from request to delivery, and its handlers);
the steps it takes live here, as bases of the workflow class, each over the same state:

- ``record.py``        the send's state, audit events and the SendState it answers with
- ``decisions.py``     whether a human's decision counts (proof, window, approver, size)
- ``announcements.py`` notices and Slack messages for humans, as abandoned child workflows
- ``delivery.py``      admission and delivery through the one activity that hands mail over
- ``provider_hold.py`` waiting for a provider's own human when the provider holds the email
- ``options.py``       how the activities are called: timeouts, retries, deadlines, limits

Temporal knows the workflow by its type name, ``SendEmailWorkflow``; these modules are no part
of that name, so histories replay whichever module a step is in.
"""
