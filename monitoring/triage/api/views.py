"""Dead-letter API: report, list and read, triage, replay, bulk actions and groups."""

from django.db.models import Prefetch
from django.http import Http404
from rest_framework import permissions, status
from rest_framework.exceptions import PermissionDenied, ValidationError
from rest_framework.pagination import PageNumberPagination
from rest_framework.response import Response
from rest_framework.views import APIView

from integration_hub.models import SeveralPlants
from integration_hub.rate_limits import RateLimited, spend_for_key
from integration_hub.roles import can_triage
from monitoring.models import Replay
from monitoring.replay import ordering, preview, requests
from monitoring.triage import actions, selectors, states
from monitoring.triage.api.serializers import dead_letter_data, group_data
from tracing.dead_letters.reports import InvalidReport, report_dead_letter
from tracing.ingest.http import BadRequest, api_key_from, parse_json
from tracing.models import DeadLetter

PAGING_PARAMS = {"page", "page_size", "format", "sort"}


class Pages(PageNumberPagination):
    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = 500


def _filters(params):
    try:
        return selectors.clean_filters({k: v for k, v in params.items() if k not in PAGING_PARAMS})
    except selectors.InvalidFilter as exc:
        raise ValidationError({exc.field: [str(exc)]}) from None


def with_replays(qs):
    replays = Replay.objects.select_related("target", "requested_by").prefetch_related("attempts")
    return qs.prefetch_related(Prefetch("replays", queryset=replays))


def letter_for(request, external_id):
    """The dead letter with this id in the reader's plants (ids are unique per plant)."""
    qs = (
        with_replays(DeadLetter.objects.for_user(request.user))
        .select_related("flow", "source", "target", "assignee", "transaction")
        .filter(external_id=external_id)
    )
    try:
        return qs.of_one_plant(request.query_params.get("plant"))
    except DeadLetter.DoesNotExist:
        raise Http404("No such dead letter.") from None
    except SeveralPlants as exc:
        raise ValidationError(
            {"plant": [f"Plants {exc} each have a dead letter {external_id!r}; add ?plant=."]}
        ) from None


def _text(data, name):
    """A free-text field (reason, note); the parser has refused NUL and lone surrogates."""
    value = data.get(name, "")
    if not isinstance(value, str):
        raise selectors.InvalidFilter(name, f"{name} must be a string.")
    return value


def _act(request):
    try:
        actions.ensure_can_act(request.user)
    except actions.NotAllowed as exc:
        raise PermissionDenied(str(exc)) from None


def _problem(exc):
    return Response({exc.field: [str(exc)], "error": str(exc)}, status=exc.status)


class ApiKeyForPost(permissions.BasePermission):
    """Reporters POST with an API key (checked in the view); everything else needs a login."""

    def has_permission(self, request, view):
        return request.method == "POST" or bool(request.user and request.user.is_authenticated)


class DeadLetterList(APIView):
    permission_classes = [ApiKeyForPost]

    def get(self, request):
        qs = selectors.dead_letters(user=request.user, filters=_filters(request.query_params))
        paginator = Pages()
        page = paginator.paginate_queryset(with_replays(qs), request, view=self)
        return paginator.get_paginated_response(
            [dead_letter_data(d, delivery=can_triage(request.user)) for d in page]
        )

    def post(self, request):
        """Middleware reports a dead letter directly; 201 new, 200 when the id is known."""
        try:
            key = api_key_from(request)
            # The events door's parser and limits: exact integers, no lone surrogates, 10 MiB.
            data = parse_json(request._request)  # the Django request: its body, unparsed
            spend_for_key(key, 1)  # one dead letter counts as one event against the key's limit
        except BadRequest as exc:
            return Response(exc.body, status=exc.status)
        except RateLimited as exc:
            return exc.response()
        try:
            reported = report_dead_letter(data, api_key=key)
        except InvalidReport as exc:
            return Response(exc.errors, status=status.HTTP_400_BAD_REQUEST)
        key.touch()
        letter = letter_for_reporter(reported.dead_letter.pk)
        return Response(
            dead_letter_data(letter), status=201 if reported.created else status.HTTP_200_OK
        )


def letter_for_reporter(pk):
    return with_replays(DeadLetter.objects.select_related("flow", "plant", "source", "target")).get(
        pk=pk
    )


def _detail(request, id, code=status.HTTP_200_OK):
    """One dead letter as the reader may see it, read afresh (after an action, its new state)."""
    letter = letter_for(request, id)
    return Response(
        dead_letter_data(letter, detail=True, delivery=can_triage(request.user)), status=code
    )


class DeadLetterDetail(APIView):
    def get(self, request, id):
        return _detail(request, id)


class DeadLetterAction(APIView):
    """POST …/{id}/replay|discard|resolve|assign|notes|preview."""

    def post(self, request, id, action):
        letter = letter_for(request, id)
        data = request.data if isinstance(request.data, dict) else {}
        if action == "preview":
            try:
                return Response(preview.preview(letter, data.get("payload", preview.UNCHANGED)))
            except preview.ReplayError as exc:
                return _problem(exc)
        _act(request)
        handler = getattr(self, f"do_{action}")
        try:
            code = handler(request, letter, data)
        except preview.ReplayError as exc:
            return _problem(exc)
        except selectors.InvalidFilter as exc:
            raise ValidationError({exc.field: [str(exc)]}) from None
        return _detail(request, id, code or status.HTTP_200_OK)

    def do_replay(self, request, letter, data):
        payload = data.get("payload", preview.UNCHANGED)
        reason = _text(data, "reason")
        requests.request_replay(
            dead_letter=letter, requested_by=request.user, payload=payload, reason=reason
        )
        return status.HTTP_202_ACCEPTED

    def _close(self, request, letter, data, state):
        reason = _text(data, "reason")
        if not reason.strip():
            raise selectors.InvalidFilter("reason", f"A reason is required to mark it {state}.")
        if not states.can_move_to(letter, state):
            raise preview.NotReplayable(
                f"It is {letter.get_state_display().lower()}; it cannot be {state} now.", "state"
            )
        if states.move_to(letter, state, by=request.user, text=reason.strip()) is None:
            raise preview.NotReplayable("It changed meanwhile; reload and try again.", "state")
        ordering.release_held({letter.business_key})

    def do_resolve(self, request, letter, data):
        self._close(request, letter, data, "resolved")

    def do_discard(self, request, letter, data):
        self._close(request, letter, data, "discarded")

    def do_assign(self, request, letter, data):
        if "assignee" not in data:
            raise selectors.InvalidFilter("assignee", "Give a username, or null for nobody.")
        username = data["assignee"]
        if username is not None and not isinstance(username, str):
            raise selectors.InvalidFilter("assignee", "assignee must be a username or null.")
        states.assign(letter, actions.assignee_from(username, [letter.plant]), by=request.user)

    def do_notes(self, request, letter, data):
        text = _text(data, "text")
        if not text.strip():
            raise selectors.InvalidFilter("text", "A note needs some text.")
        states.add_note(letter, text.strip()[:10000], by=request.user)
        return status.HTTP_201_CREATED


def bulk_url(bulk):
    return f"/api/v1/dead-letters/bulk/{bulk.id}"


class Bulk(APIView):
    """POST {"action", "ids"|"filter", "reason"?, "assignee"?, "dry_run"?}."""

    def post(self, request):
        _act(request)
        data = request.data if isinstance(request.data, dict) else {}
        action = data.get("action")
        if action not in actions.BULK_ACTIONS:
            raise ValidationError({"action": [f"One of: {', '.join(actions.BULK_ACTIONS)}."]})
        ids, filters = data.get("ids"), data.get("filter")
        if (ids is None) == (filters is None):
            raise ValidationError({"ids": ["Send either 'ids' (a list) or 'filter' (an object)."]})
        if ids is not None:
            if not isinstance(ids, list) or not all(isinstance(i, str) for i in ids) or not ids:
                raise ValidationError({"ids": ["A non-empty list of dead-letter ids."]})
            letters = DeadLetter.objects.for_user(request.user).filter(external_id__in=ids)
            selection = {"ids": ids}
        else:
            if not isinstance(filters, dict):
                raise ValidationError({"filter": ['An object of filters, e.g. {"plant": …}.']})
            try:
                clean = selectors.clean_filters(filters)
            except selectors.InvalidFilter as exc:
                raise ValidationError({f"filter.{exc.field}": [str(exc)]}) from None
            letters = selectors.dead_letters(user=request.user, filters=clean)
            selection = {"filter": clean}
        reason = data.get("reason", "")
        if not isinstance(reason, str):
            raise ValidationError({"reason": ["A string."]})
        if action in ("resolve", "discard") and not reason.strip():
            raise ValidationError({"reason": [f"A reason is required to {action}."]})
        assignee = None
        if action == "assign":
            if "assignee" not in data:
                raise ValidationError({"assignee": ["Give a username, or null for nobody."]})
            try:
                assignee = actions.assignee_from(data["assignee"], actions.plants_of(letters))
            except selectors.InvalidFilter as exc:
                raise ValidationError({exc.field: [str(exc)]}) from None
        if data.get("dry_run"):
            return Response(
                {"action": action, **actions.preview_count(action=action, letters=letters)}
            )
        bulk = actions.bulk(
            action=action, letters=letters, by=request.user, reason=reason.strip(),
            assignee=assignee, selection=selection,
        )  # fmt: skip
        progress = requests.bulk_progress(bulk)
        return Response(
            {"action": action, "touched": bulk.touched, "skipped": bulk.skipped,
             "bulk": {"id": str(bulk.id), "url": bulk_url(bulk)}, "progress": progress},
            status=status.HTTP_202_ACCEPTED if action == "replay" else status.HTTP_200_OK,
        )  # fmt: skip


def _bulk_for(request, bulk_id):
    bulk, letters = actions.bulk_for(request.user, bulk_id)
    if bulk is None:
        raise Http404("No such bulk action.")
    return bulk, letters


class BulkDetail(APIView):
    def get(self, request, bulk_id):
        bulk, letters = _bulk_for(request, bulk_id)
        return Response(requests.bulk_progress(bulk, dead_letters=letters))


class BulkCancel(APIView):
    def post(self, request, bulk_id):
        _act(request)
        bulk, letters = _bulk_for(request, bulk_id)
        cancelled = requests.cancel_bulk(bulk, by=request.user, dead_letters=letters)
        bulk.refresh_from_db()
        progress = requests.bulk_progress(bulk, dead_letters=letters)
        return Response({"cancelled": cancelled, "progress": progress})


class GroupList(APIView):
    def get(self, request):
        sort = request.query_params.get("sort", "newest")
        if sort not in ("newest", "impact"):
            raise ValidationError({"sort": ["newest or impact."]})
        qs = selectors.dead_letters(user=request.user, filters=_filters(request.query_params))
        return Response({"results": [group_data(g) for g in selectors.groups(qs, sort=sort)]})
