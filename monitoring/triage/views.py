"""Pages: the dead-letter inbox (groups by cause), one dead letter, replay preview, bulk actions."""

import json
from urllib.parse import urlencode

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import Http404
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_POST

from integration_hub.models import Flow, Plant, System
from integration_hub.roles import can_triage
from monitoring.replay import ordering, preview, requests
from monitoring.triage import actions, selectors, states
from monitoring.triage.api.views import with_replays
from monitoring.triage.impact import letter_impact, open_counts
from tracing.models import DeadLetter, DeadLetterState

PAGE_SIZE = 100


def _filters(params):
    """(values as typed, clean filters, errors); the inbox shows open ones unless told."""
    values = {name: params.get(name, "").strip() for name in selectors.FILTERS}
    if "state" not in params:
        values["state"] = "open"
    try:
        clean = selectors.clean_filters(values, strict=False)
    except selectors.InvalidFilter as exc:
        return values, None, {exc.field: str(exc)}
    return values, clean, {}


def _context(request, values):
    return {
        "values": values,
        "plants": Plant.objects.for_user(request.user),
        "flows": Flow.objects.all(),
        "systems": System.objects.all(),
        "states": [("open", "Open"), ("all", "Any state"), *DeadLetterState.choices],
        "error_classes": selectors.ERROR_CLASSES,
        "can_triage": can_triage(request.user),
        "query": urlencode({k: v for k, v in values.items() if v}),
    }


@login_required
def inbox(request):
    """Groups by cause (newest or most impact first); with a fingerprint, that group's letters."""
    values, clean, errors = _filters(request.GET)
    sort = request.GET.get("sort", "newest")
    context = _context(request, values) | {"errors": errors, "sort": sort}
    if clean is not None:
        qs = selectors.dead_letters(user=request.user, filters=clean)
        context["counts"] = open_counts(selectors.dead_letters(user=request.user))
        context["groups"] = selectors.groups(qs, sort="impact" if sort == "impact" else "newest")
        context["total"] = qs.count()
        if values.get("fingerprint") or values.get("q"):
            context["letters"] = list(qs[:PAGE_SIZE])
    if request.htmx and request.htmx.target == "inbox-results":
        return render(request, "deadletters/partials/results.html", context)
    return render(request, "deadletters/inbox.html", context)


@login_required
def counts(request):
    """The live counts in the inbox header (HTMX polls this)."""
    return render(
        request,
        "deadletters/partials/counts.html",
        {"counts": open_counts(selectors.dead_letters(user=request.user))},
    )


def _letter(request, pk):
    qs = with_replays(DeadLetter.objects.for_user(request.user)).select_related(
        "flow", "plant", "source", "target", "assignee", "transaction"
    )
    return get_object_or_404(qs, pk=pk)


def _require_triage(request):
    if not can_triage(request.user):
        raise PermissionDenied("Only analysts and admins may act on dead letters.")


@login_required
def detail(request, pk):
    letter = _letter(request, pk)
    if request.method == "POST":
        _require_triage(request)
        _act_on(request, letter)
        return redirect("dead-letter", pk=letter.pk)
    return render(
        request,
        "deadletters/detail.html",
        {
            "letter": letter,
            "payload": preview.pretty(letter.payload),
            "edited": preview.pretty(letter.edited_payload) if letter.payload_version > 1 else "",
            "headers": preview.mask_headers(letter.headers),
            "history": letter.changes.select_related("by", "assignee"),
            "impact": letter_impact(letter),
            "can_triage": can_triage(request.user),
            "people": actions.assignable([letter.plant]),
            "replay_problem": _replay_problem(letter),
        },
    )


def _replay_problem(letter):
    try:
        preview.destination(letter)
    except preview.NoReplayEndpoint as exc:
        return str(exc)
    return ""


def _act_on(request, letter):
    action = request.POST.get("action")
    text = request.POST.get("text", "").strip()
    if action in ("resolve", "discard"):
        state = "resolved" if action == "resolve" else "discarded"
        if not text:
            messages.error(request, f"Give a reason to mark it {state}.")
        elif states.move_to(letter, state, by=request.user, text=text) is None:
            messages.error(request, f"It is {letter.get_state_display().lower()}; not {state}.")
        else:
            ordering.release_held({letter.business_key})
            messages.success(request, f"Marked {state}.")
    elif action == "assign":
        try:
            states.assign(
                letter,
                actions.assignee_from(request.POST.get("assignee"), [letter.plant]),
                by=request.user,
            )
            messages.success(request, "Assignment saved.")
        except selectors.InvalidFilter as exc:
            messages.error(request, str(exc))
    elif action == "note":
        if text:
            states.add_note(letter, text[:10000], by=request.user)
            messages.success(request, "Note added.")
        else:
            messages.error(request, "A note needs some text.")
    elif action == "investigate":
        states.move_to(letter, "investigating", by=request.user, text="Investigating")


def _next_url(request, letter, target):
    """Where to go after a replay is queued: the page of this site the form came from
    (`target`), else the dead letter."""
    if target and url_has_allowed_host_and_scheme(target, allowed_hosts={request.get_host()}):
        return target
    return reverse("dead-letter", args=[letter.pk])


@login_required
def replay_page(request, pk):
    """Preview exactly what will be sent (with an edit box and a diff); replay on confirm.

    An HTMX GET gets the preview alone, to open in place on the dead letter or transaction page,
    with a confirm button: the replay is two clicks from there.
    """
    letter = _letter(request, pk)
    back = request.POST.get("next") or request.GET.get("next", "")
    text = request.POST.get("payload") if request.method == "POST" else None
    reason = request.POST.get("reason", "").strip() if request.method == "POST" else ""
    errors, payload = {}, preview.UNCHANGED
    if text is not None and text.strip() != preview.pretty(letter.current_payload).strip():
        try:
            payload = preview.parse_payload(text)
        except preview.InvalidPayload as exc:
            errors["payload"] = str(exc)
    if request.method == "POST" and request.POST.get("confirm") and not errors:
        _require_triage(request)
        try:
            requests.request_replay(
                dead_letter=letter, requested_by=request.user, payload=payload, reason=reason
            )
        except preview.ReplayError as exc:
            errors[exc.field] = str(exc)
        else:
            messages.success(request, "Replay queued.")
            return redirect(_next_url(request, letter, back))
    try:
        planned = preview.preview(letter, payload) if "payload" not in errors else None
    except preview.NoReplayEndpoint as exc:
        planned, errors["target"] = None, str(exc)
    context = {
        "letter": letter,
        "preview": planned,
        "text": text if text is not None else preview.pretty(letter.current_payload),
        "reason": reason,
        "errors": errors,
        "can_triage": can_triage(request.user),
        "next": back,
    }
    if request.htmx and request.method == "GET":
        _require_triage(request)
        return render(request, "deadletters/partials/replay_panel.html", context)
    return render(request, "deadletters/replay.html", context)


@login_required
@require_POST
def bulk_confirm(request):
    """Bulk action on the ticked letters or on everything the filter matches: confirm, then run."""
    _require_triage(request)
    action = request.POST.get("action")
    if action not in actions.BULK_ACTIONS:
        messages.error(request, "Choose an action.")
        return redirect(f"{request.POST.get('back', '/dead-letters/')}")
    ids = [i for i in request.POST.getlist("ids") if i.isdigit()]
    if ids and request.POST.get("scope") != "filter":
        letters = DeadLetter.objects.for_user(request.user).filter(pk__in=ids)
        selection = {"ids": list(letters.values_list("external_id", flat=True))}
    else:
        values, clean, errors = _filters(request.POST)
        if errors:
            raise Http404(next(iter(errors.values())))
        letters = selectors.dead_letters(user=request.user, filters=clean)
        selection = {"filter": clean}
    reason = request.POST.get("reason", "").strip()
    count = actions.preview_count(action=action, letters=letters)
    if not request.POST.get("confirm") or (action in ("resolve", "discard") and not reason):
        return render(
            request,
            f"deadletters/{'partials/confirm_form' if request.htmx else 'confirm'}.html",
            {
                "action": action,
                "count": count,
                "post": request.POST,
                "ids": ids,
                "filter_values": {k: request.POST.get(k, "") for k in selectors.FILTERS},
                "reason": reason,
                "reason_missing": bool(request.POST.get("confirm"))
                and action in ("resolve", "discard")
                and not reason,
                "people": actions.assignable(actions.plants_of(letters)),
            },
        )
    try:
        assignee = (
            actions.assignee_from(request.POST.get("assignee"), actions.plants_of(letters))
            if action == "assign"
            else None
        )
    except selectors.InvalidFilter as exc:
        messages.error(request, str(exc))
        return redirect("dead-letters")
    bulk = actions.bulk(
        action=action, letters=letters, by=request.user, reason=reason, assignee=assignee,
        selection=selection,
    )  # fmt: skip
    if action == "replay":
        return redirect("dead-letter-bulk-progress", bulk_id=bulk.id)
    messages.success(request, f"{action.capitalize()}: {bulk.touched} dead letters.")
    return redirect("dead-letters")


@login_required
def bulk_progress(request, bulk_id):
    """Done / failed / remaining of a bulk replay, live (HTMX polls); cancel stops what is left."""
    bulk, letters = actions.bulk_for(request.user, bulk_id)
    if bulk is None:
        raise Http404("No such bulk action.")
    if request.method == "POST":
        _require_triage(request)
        cancelled = requests.cancel_bulk(bulk, by=request.user, dead_letters=letters)
        messages.success(request, f"Cancelled {cancelled} replays not yet sent.")
        return redirect("dead-letter-bulk-progress", bulk_id=bulk.id)
    progress = requests.bulk_progress(bulk, dead_letters=letters)
    context = {"bulk": bulk, "progress": progress, "can_triage": can_triage(request.user)}
    context["progress_json"] = json.dumps(progress)
    if request.htmx:
        return render(request, "deadletters/partials/progress.html", context)
    return render(request, "deadletters/bulk.html", context)
