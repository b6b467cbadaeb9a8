"""The event log: an audit trail of every change, hash-chained per organization (DESIGN.md, "Events").

Services record through `events.services.record` / `record_many`, inside their own transaction; who did it
and from where come from `events.context`, which the API, the admin, the portal pages and the commands set.
"""
