"""One portal's own pages in the admin: users, invitations, features, settings, live sessions and its audit log.

Every read and write of the portal's data runs inside `tenant_context(portal)`, which always puts
the connection back on public; pages are rendered only after leaving it. Pages are materialized inside, so a
template can never run a query against the wrong schema. Each action calls one service, which records its
audit events (`events`): the admin writes no log of its own.
"""

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from django.contrib import messages
from django.contrib.admin import ModelAdmin, helpers
from django.core.paginator import Page, Paginator
from django.db.models import Model, QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import reverse
from django_tenants.utils import tenant_context

from accounts.permissions import request_account
from customer_portal.admin_forms import PortalSettingsForm, PortalUsersInviteForm
from customer_portal.models import Invitation, PortalUser
from customer_portal.selectors import (
    feature_list,
    invitation_list,
    live_sessions,
    portal_settings_get,
    portal_stats,
    portal_user_filter,
    portal_user_list_by_ids,
)
from customer_portal.services import (
    InviteOutcome,
    feature_toggle,
    invitations_resend,
    invitations_revoke,
    portal_config_update,
    portal_session_end,
    portal_users_invite,
    portal_users_remove,
    portal_users_restore,
    portal_users_revoke,
)
from events.selectors import NEWEST_FIRST, audit_event_counts, audit_event_list
from portals.models import Portal
from portalsite.errors import ApplicationError, NotFoundError
from portalsite.forms import admin_form, form_errors_from

PAGE_SIZE = 50
M = TypeVar("M", bound=Model)
_NONE_SELECTED = "Items must be selected in order to perform actions on them. No items have been changed."

USER_ACTIONS = {
    "revoke": "Revoke access",
    "restore": "Restore access (invite again)",
    "remove": "Remove from the portal",
}
INVITATION_ACTIONS = {"resend": "Resend invitation", "revoke": "Revoke invitation"}
INVITATION_FILTERS = ["pending", "expired", "accepted", "revoked", "all"]
DELIVERY_FILTERS = Invitation.DeliveryStatus.values  # queued, sent, failed

PortalView = Callable[[ModelAdmin[Portal], HttpRequest, Portal], HttpResponse]


@dataclass(frozen=True)
class PortalHeader:
    """What every portal page shows above its content: branding and the counts on the tabs."""

    display_name: str
    primary_color: str
    users: dict[str, int]
    invitations: dict[str, int]
    invitation_emails: dict[str, int]
    live_sessions: int
    features: dict[str, int]


def _portal_header() -> PortalHeader:
    """Read inside the portal's schema."""
    portal_settings = portal_settings_get()
    stats = portal_stats()
    return PortalHeader(
        display_name=portal_settings.display_name,
        primary_color=portal_settings.safe_primary_color,  # it lands in a style attribute
        users=stats.users,
        invitations=stats.invitations,
        invitation_emails=stats.invitation_emails,
        live_sessions=stats.sessions["active"],
        features=stats.features,
    )


def _query(request: HttpRequest, **changes: str | int | None) -> str:
    """The current query string with some parameters changed (None drops one)."""
    query = request.GET.copy()
    for name, value in changes.items():
        if value is None:
            query.pop(name, None)
        else:
            query[name] = str(value)
    return f"?{query.urlencode()}"


def _status_filters(
    request: HttpRequest,
    filters: Sequence[tuple[str, str | None, int]],
    *,
    selected: str | None,
    parameter: str = "status",
) -> list[dict[str, Any]]:
    """A sidebar filter's links: (label, value of `parameter` or None for all, count) each, the current one marked;
    the other filters in the query string stay as they are."""
    return [
        {
            "label": label,
            "count": count,
            "selected": value == selected,
            "query": _query(request, **{parameter: value, "p": None}),
        }
        for label, value, count in filters
    ]


def _paginated(request: HttpRequest, queryset: QuerySet[M]) -> tuple[Page[M], list[tuple[str | int, str | None]]]:
    """The requested page of `queryset`, evaluated now (call it inside the portal's schema; past the last page
    is the last page), and its links: (label, query string, or None for the current page and ellipses)."""
    paginator = Paginator(queryset, PAGE_SIZE)
    page = paginator.get_page(request.GET.get("p"))
    page.object_list = list(page.object_list)
    links: list[tuple[str | int, str | None]] = []
    if paginator.num_pages > 1:
        for label in paginator.get_elided_page_range(page.number, on_each_side=2, on_ends=1):
            current = label == page.number or isinstance(label, str)  # the ellipses are the only text labels
            links.append((label, None if current else _query(request, p=label)))
    return page, links


def _url(model_admin: ModelAdmin[Portal], name: str, portal: Portal) -> str:
    info = (model_admin.opts.app_label, model_admin.opts.model_name, name)
    return reverse("admin:{}_{}_{}".format(*info), args=[portal.pk], current_app=model_admin.admin_site.name)


def _tabs(model_admin: ModelAdmin[Portal], portal: Portal, header: PortalHeader, active: str) -> list[dict[str, Any]]:
    tabs = [
        ("users", "Users", header.users["total"]),
        ("invite", "Invite people", None),
        ("invitations", "Pending invitations", header.invitations["pending"]),
        ("features", "Features", f"{header.features['enabled']}/{header.features['total']}"),
        ("settings", "Settings", None),
        ("sessions", "Live sessions", header.live_sessions),
        ("audit", "Audit log", None),
    ]
    return [
        {"name": name, "label": label, "count": count, "url": _url(model_admin, name, portal), "active": name == active}
        for name, label, count in tabs
    ]


def _render(
    model_admin: ModelAdmin[Portal],
    request: HttpRequest,
    portal: Portal,
    header: PortalHeader,
    *,
    tab: str,
    title: str,
    template: str,
    context: dict[str, Any],
) -> TemplateResponse:
    request.current_app = model_admin.admin_site.name
    return TemplateResponse(
        request,
        f"admin/portals/portal/manage/{template}",
        {
            **model_admin.admin_site.each_context(request),
            "opts": model_admin.opts,
            "title": title,
            "portal": portal,
            "portal_host": portal.default_domain,
            "header": header,
            "tabs": _tabs(model_admin, portal, header, tab),
            "tab": tab,
            **context,
        },
    )


def _chosen_action(request: HttpRequest, actions: dict[str, str]) -> tuple[str, list[str]]:
    """The posted action and selected ids; a warning message (and empty values) when either is missing."""
    action, ids = request.POST.get("action", ""), request.POST.getlist(helpers.ACTION_CHECKBOX_NAME)
    if action not in actions:
        messages.warning(request, "No action selected.")
        return "", []
    if not ids:
        messages.warning(request, _NONE_SELECTED)
    return action, ids


def _emails(items: Sequence[str]) -> str:
    """A short list for messages."""
    shown = ", ".join(items[:10])
    return f"{shown} and {len(items) - 10} more" if len(items) > 10 else shown


def _people(count: int) -> str:
    return f"{count} {'person' if count == 1 else 'people'}"


# Users -----------------------------------------------------------------------------------------


def portal_users_view(model_admin: ModelAdmin[Portal], request: HttpRequest, portal: Portal) -> HttpResponse:
    if request.method == "POST":
        return _portal_users_action(model_admin, request, portal)
    status = request.GET.get("status") if request.GET.get("status") in PortalUser.Status.values else None
    search = request.GET.get("q", "").strip()[:254]
    with tenant_context(portal):
        header = _portal_header()
        page, page_links = _paginated(request, portal_user_filter(status=status, search=search))
    filters = [("All", None, header.users["total"])] + [
        (label, value, header.users[value]) for value, label in PortalUser.Status.choices
    ]
    return _render(
        model_admin,
        request,
        portal,
        header,
        tab="users",
        title=f"Users of {portal.name}",
        template="users.html",
        context={
            "users": page.object_list,
            "page": page,
            "page_links": page_links,
            "search": search,
            "status": status,
            "status_filters": _status_filters(request, filters, selected=status),
            "clear_search": _query(request, q=None, p=None),
            "actions": USER_ACTIONS.items(),
        },
    )


def _portal_users_action(model_admin: ModelAdmin[Portal], request: HttpRequest, portal: Portal) -> HttpResponse:
    back = HttpResponseRedirect(request.get_full_path())
    action, ids = _chosen_action(request, USER_ACTIONS)
    if not (action and ids):
        return back
    if action == "remove" and request.POST.get("confirm") != "yes":
        return _portal_users_remove_confirmation(model_admin, request, portal, ids)

    selected = len(set(ids))
    with tenant_context(portal):
        if action == "restore":
            outcome = portal_users_restore(portal=portal, ids=ids, invited_by=request_account(request))
            changed = len(outcome.results)
        else:
            service = portal_users_revoke if action == "revoke" else portal_users_remove
            members = service(ids=ids)
            done = [member.email for member in members]
            changed = len(done)
    if action == "restore":
        _report_restore(model_admin, request, portal, outcome)
    elif done:
        verb = "Revoked access of" if action == "revoke" else "Removed"
        messages.success(request, f"{verb} {_people(len(done))}: {_emails(done)}.")
    if selected > changed:
        messages.warning(
            request, f"{selected - changed} selected user(s) no longer exist in this portal; nothing was done for them."
        )
    return back


def _report_restore(
    model_admin: ModelAdmin[Portal], request: HttpRequest, portal: Portal, outcome: InviteOutcome
) -> None:
    restored = [result.user.id for result in outcome.results if result.status != "already_member"]
    unchanged = outcome.count("already_member")
    if restored:
        summary = f"{outcome.count('invited')} invited again, {outcome.count('linked')} active again"
        messages.success(request, f"Restored access of {_people(len(restored))} ({summary}).")
    if unchanged:
        messages.info(request, f"{_people(unchanged)} already had access; nothing changed for them.")


def _portal_users_remove_confirmation(
    model_admin: ModelAdmin[Portal], request: HttpRequest, portal: Portal, ids: list[str]
) -> HttpResponse:
    with tenant_context(portal):
        header = _portal_header()
        members = portal_user_list_by_ids(ids=ids)
    if not members:
        messages.warning(request, "The selected users no longer exist in this portal.")
        return HttpResponseRedirect(request.get_full_path())
    return _render(
        model_admin,
        request,
        portal,
        header,
        tab="users",
        title="Are you sure?",
        template="users_remove.html",
        context={"members": members, "back": request.get_full_path()},
    )


def portal_users_invite_view(model_admin: ModelAdmin[Portal], request: HttpRequest, portal: Portal) -> HttpResponse:
    form = PortalUsersInviteForm(request.POST or None, request.FILES or None)
    if request.method == "POST" and form.is_valid():
        rows = form.cleaned_data["rows"]
        try:
            with tenant_context(portal):
                outcome = portal_users_invite(
                    portal=portal,
                    entries=rows.entries,
                    invited_by=request_account(request),
                    send_email=form.cleaned_data["send_email"],
                )
        except ApplicationError as exc:
            form_errors_from(form, exc, labels=rows.labels)
        else:
            invited, linked, already = (outcome.count(status) for status in ("invited", "linked", "already_member"))
            summary = f"{invited} invited, {linked} linked to existing accounts, {already} already members"
            messages.success(request, f"Invited {_people(invited + linked)}: {summary}.")
            return HttpResponseRedirect(_url(model_admin, "users", portal))
    with tenant_context(portal):
        header = _portal_header()
        allowed_domains = portal_settings_get().allowed_email_domains
    return _render(
        model_admin,
        request,
        portal,
        header,
        tab="invite",
        title=f"Invite people to {portal.name}",
        template="invite.html",
        context={"adminform": admin_form(model_admin, form), "allowed_domains": allowed_domains},
    )


# Invitations -------------------------------------------------------------------------------------


def portal_invitations_view(model_admin: ModelAdmin[Portal], request: HttpRequest, portal: Portal) -> HttpResponse:
    if request.method == "POST":
        return _portal_invitations_action(model_admin, request, portal)
    status = request.GET.get("status", "pending")
    status = status if status in INVITATION_FILTERS else "pending"
    delivery = request.GET.get("delivery")
    delivery = delivery if delivery in DELIVERY_FILTERS else None
    with tenant_context(portal):
        header = _portal_header()
        page, page_links = _paginated(request, invitation_list(status=status, delivery_status=delivery))
    counts = {**header.invitations, "all": sum(header.invitations.values())}
    emails = header.invitation_emails
    return _render(
        model_admin,
        request,
        portal,
        header,
        tab="invitations",
        title=f"Invitations to {portal.name}",
        template="invitations.html",
        context={
            "invitations": page.object_list,
            "page": page,
            "page_links": page_links,
            "status": status,
            "status_filters": _status_filters(
                request,
                [(value.capitalize(), value, counts.get(value, 0)) for value in INVITATION_FILTERS],
                selected=status,
            ),
            "delivery": delivery,
            # Counts over every invitation, whatever the status filter: "failed (3)" finds all three.
            "delivery_filters": _status_filters(
                request,
                [
                    ("Any", None, sum(emails.values())),
                    *((value.capitalize(), value, emails[value]) for value in DELIVERY_FILTERS),
                ],
                selected=delivery,
                parameter="delivery",
            ),
            "actions": INVITATION_ACTIONS.items(),
        },
    )


def _portal_invitations_action(model_admin: ModelAdmin[Portal], request: HttpRequest, portal: Portal) -> HttpResponse:
    back = HttpResponseRedirect(request.get_full_path())
    action, ids = _chosen_action(request, INVITATION_ACTIONS)
    if not (action and ids):
        return back
    with tenant_context(portal):
        outcome = invitations_resend(portal=portal, ids=ids) if action == "resend" else invitations_revoke(ids=ids)
        done = [invitation.portal_user.email for invitation in outcome.done]
    refused = [
        "An invitation was not found." if isinstance(exc, NotFoundError) else exc.message for exc in outcome.refused
    ]
    verb = "Resent" if action == "resend" else "Revoked"
    if done:
        noun = "invitation" if len(done) == 1 else "invitations"
        messages.success(request, f"{verb} {len(done)} {noun}: {_emails(done)}.")
    for message in dict.fromkeys(refused):
        messages.error(request, f"{message} ({refused.count(message)} not changed)")
    return back


# Features ----------------------------------------------------------------------------------------


def portal_features_view(model_admin: ModelAdmin[Portal], request: HttpRequest, portal: Portal) -> HttpResponse:
    if request.method == "POST":
        key, enabled = request.POST.get("feature", ""), request.POST.get("enabled") == "on"
        try:
            with tenant_context(portal):
                feature = feature_toggle(key=key, enabled=enabled)
        except ApplicationError:
            messages.error(request, f"There is no feature {key!r} in this portal.")
        else:
            state = "on" if feature.enabled else "off"
            messages.success(request, f"Turned {state} {feature.name}.")
        return HttpResponseRedirect(request.get_full_path())
    with tenant_context(portal):
        header = _portal_header()
        features = feature_list()
    return _render(
        model_admin,
        request,
        portal,
        header,
        tab="features",
        title=f"Features of {portal.name}",
        template="features.html",
        context={"features": features},
    )


# Settings ----------------------------------------------------------------------------------------


def portal_settings_view(model_admin: ModelAdmin[Portal], request: HttpRequest, portal: Portal) -> HttpResponse:
    changed: list[str] = []
    with tenant_context(portal):
        current = portal_settings_get()
        form = PortalSettingsForm(request.POST or None, initial=PortalSettingsForm.initial_from(current))
        if request.method == "POST" and form.is_valid():
            changes = form.config_changes(current)
            if changes:
                try:
                    portal_config_update(**changes)
                except ApplicationError as exc:
                    form_errors_from(form, exc)
                else:
                    changed = list(changes)
            elif changes is not None:
                messages.info(request, "Nothing changed.")
                return HttpResponseRedirect(request.get_full_path())
        header = _portal_header()
    if changed:
        labels = ", ".join(str(form.fields[name].label or name.replace("_", " ")).lower() for name in changed)
        messages.success(request, f"Saved: {labels}.")
        return HttpResponseRedirect(request.get_full_path())
    return _render(
        model_admin,
        request,
        portal,
        header,
        tab="settings",
        title=f"Settings of {portal.name}",
        template="settings.html",
        context={"adminform": admin_form(model_admin, form)},
    )


# Live sessions -----------------------------------------------------------------------------------


def portal_sessions_view(model_admin: ModelAdmin[Portal], request: HttpRequest, portal: Portal) -> HttpResponse:
    if request.method == "POST":
        return _portal_session_end(model_admin, request, portal)
    with tenant_context(portal):
        header = _portal_header()
        page, page_links = _paginated(request, live_sessions().select_related("portal_user").order_by("-created_at"))
    return _render(
        model_admin,
        request,
        portal,
        header,
        tab="sessions",
        title=f"Live sessions in {portal.name}",
        template="sessions.html",
        context={"sessions": page.object_list, "page": page, "page_links": page_links},
    )


def _portal_session_end(model_admin: ModelAdmin[Portal], request: HttpRequest, portal: Portal) -> HttpResponse:
    try:
        with tenant_context(portal):
            session = portal_session_end(session_id=request.POST.get("session", ""))
    except NotFoundError:
        messages.warning(request, "That session had already ended.")
    else:
        email = session.portal_user.email
        messages.success(request, f"Ended the session of {email}; they must log in again.")
    return HttpResponseRedirect(request.get_full_path())


# Audit log ---------------------------------------------------------------------------------------

ACTORS_SHOWN = 20  # the busiest actors get a filter link each; any other is found by the search box


def portal_audit_view(model_admin: ModelAdmin[Portal], request: HttpRequest, portal: Portal) -> HttpResponse:
    """The portal's trail, newest first, filtered by action and by actor (a link, or an e-mail searched)."""
    assert portal.organization_id is not None
    trail = audit_event_list(organization_ids=[portal.organization_id], portal_id=portal.id)
    actions = audit_event_counts(trail, "action")
    actors = audit_event_counts(trail, "actor_email")[:ACTORS_SHOWN]
    action = request.GET.get("action") if request.GET.get("action") in dict(actions) else None
    actor = request.GET.get("actor", "").strip()[:254] or None
    events = audit_event_list(
        organization_ids=[portal.organization_id], portal_id=portal.id, action=action, actor_email=actor
    ).order_by(*NEWEST_FIRST)
    page, page_links = _paginated(request, events)
    with tenant_context(portal):
        header = _portal_header()
    total = sum(count for _, count in actions)
    return _render(
        model_admin,
        request,
        portal,
        header,
        tab="audit",
        title=f"Audit log of {portal.name}",
        template="audit.html",
        context={
            "events": page.object_list,
            "page": page,
            "page_links": page_links,
            "actor": actor or "",
            "status_filters": _status_filters(
                request,
                [("All", None, total), *((name, name, count) for name, count in actions)],
                selected=action,
                parameter="action",
            ),
            "actor_filters": _status_filters(
                request,
                [
                    ("Anyone", None, total),
                    *((email or "(no e-mail)", email, count) for email, count in actors if email),
                ],
                selected=actor,
                parameter="actor",
            ),
            "clear_search": _query(request, actor=None, p=None),
        },
    )


PORTAL_VIEWS: dict[str, PortalView] = {
    "users": portal_users_view,
    "invite": portal_users_invite_view,
    "invitations": portal_invitations_view,
    "features": portal_features_view,
    "settings": portal_settings_view,
    "sessions": portal_sessions_view,
    "audit": portal_audit_view,
}
