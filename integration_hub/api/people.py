"""People, their plant roles and reporter API keys, by API (admins only): what automation and
our own checks use to set a plant up without the admin site.

A person has one role (supervisor or analyst; admin is the admin group) across the plants they
are a member of: the role is their group, the plants are their memberships.
"""

from django.contrib.auth import get_user_model, password_validation
from django.contrib.auth.models import Group
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import transaction
from django.shortcuts import get_object_or_404
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.exceptions import ValidationError
from rest_framework.response import Response
from rest_framework.views import APIView

from integration_hub.api.permissions import IsHubAdmin
from integration_hub.models import ApiKey, Plant, PlantMembership, System
from integration_hub.roles import ANALYST, ROLES, SUPERVISOR

PLANT_ROLES = (SUPERVISOR, ANALYST)


def role_of(user):
    """The person's role: the highest of their role groups (read from prefetched groups)."""
    names = {g.name for g in user.groups.all()}
    return next((r for r in reversed(ROLES) if r in names), None)


PERSON_RELATED = ("groups", "plant_memberships__plant")


def user_data(user):
    return {
        "username": user.get_username(),
        "email": user.email,
        "role": role_of(user),
        "plants": sorted(m.plant.code for m in user.plant_memberships.all()),
        "is_active": user.is_active,
    }


class NewUser(serializers.Serializer):
    username = serializers.CharField(max_length=150)
    email = serializers.EmailField(required=False, allow_blank=True, default="")
    password = serializers.CharField(write_only=True, max_length=256)

    def validate_username(self, value):
        model = get_user_model()
        field = model._meta.get_field(model.USERNAME_FIELD)
        try:
            field.run_validators(value)
        except DjangoValidationError as exc:
            raise serializers.ValidationError(exc.messages) from None
        if model.objects.filter(**{model.USERNAME_FIELD: value}).exists():
            raise serializers.ValidationError("A person with this username exists.")
        return value

    def validate(self, data):
        candidate = get_user_model()(username=data["username"], email=data["email"])
        try:
            password_validation.validate_password(data["password"], candidate)
        except DjangoValidationError as exc:
            raise ValidationError({"password": exc.messages}) from None
        return data


class UserList(APIView):
    permission_classes = [IsHubAdmin]

    def get(self, request):
        people = get_user_model().objects.order_by("username").prefetch_related(*PERSON_RELATED)
        return Response({"results": [user_data(u) for u in people]})

    def post(self, request):
        data = NewUser(data=request.data)
        data.is_valid(raise_exception=True)
        user = get_user_model().objects.create_user(**data.validated_data)
        return Response(user_data(user), status=status.HTTP_201_CREATED)


class MemberList(APIView):
    permission_classes = [IsHubAdmin]

    def get(self, request, code):
        plant = get_object_or_404(Plant, code=code)
        members = PlantMembership.objects.filter(plant=plant).prefetch_related("user__groups")
        return Response(
            {
                "plant": plant.code,
                "results": [
                    {"username": m.user.get_username(), "role": role_of(m.user)}
                    for m in members.order_by("user__username")
                ],
            }
        )


class Member(APIView):
    permission_classes = [IsHubAdmin]

    def put(self, request, code, username):
        plant = get_object_or_404(Plant, code=code)
        user = get_object_or_404(get_user_model(), username=username)
        role = request.data.get("role") if isinstance(request.data, dict) else None
        if role not in PLANT_ROLES:
            raise ValidationError({"role": [f"One of {', '.join(PLANT_ROLES)}."]})
        current = role_of(user)
        others = user.plant_memberships.exclude(plant=plant).exists()
        if current in PLANT_ROLES and current != role and others:
            raise ValidationError(
                {"role": [f"{username} is a {current} at other plants; a person has one role."]}
            )
        with transaction.atomic():
            user.groups.remove(*Group.objects.filter(name__in=PLANT_ROLES))
            user.groups.add(Group.objects.get(name=role))
            _, created = PlantMembership.objects.get_or_create(user=user, plant=plant)
        body = {"plant": plant.code, "username": username, "role": role}
        return Response(body, status=status.HTTP_201_CREATED if created else status.HTTP_200_OK)

    def delete(self, request, code, username):
        membership = get_object_or_404(PlantMembership, plant__code=code, user__username=username)
        membership.delete()
        return Response(status=status.HTTP_204_NO_CONTENT)


def key_data(key):
    systems, plants = key.allowed_codes
    return {
        "id": key.pk,
        "name": key.name,
        "prefix": key.prefix,
        "systems": sorted(systems),
        "plants": sorted(plants),
        "created_at": key.created_at.isoformat(),
        "last_used_at": key.last_used_at.isoformat() if key.last_used_at else None,
        "revoked_at": key.revoked_at.isoformat() if key.revoked_at else None,
        "events_per_second": key.events_per_second,
        "burst": key.burst,
    }


RATE_FIELDS = ("events_per_second", "burst")


def _rate_limit(data, key):
    """Set `events_per_second` and `burst` from the body (null: unlimited / one second's
    worth) on the key; 400 naming the field for anything but a whole number from 1."""
    for name in RATE_FIELDS:
        if name not in data:
            continue
        value = data[name]
        if value is not None and (type(value) is not int or not 1 <= value <= 10**9):
            raise ValidationError({name: ["A whole number from 1, or null for no limit."]})
        setattr(key, name, value)
    try:
        key.clean()
    except DjangoValidationError as exc:
        raise ValidationError(exc.message_dict) from None


def _codes(model, data, name):
    codes = data.get(name, [])
    if not isinstance(codes, list) or not all(isinstance(c, str) for c in codes):
        raise ValidationError({name: ["A list of codes."]})
    found = {obj.code: obj for obj in model.objects.filter(code__in=codes)}
    missing = sorted(set(codes) - set(found))
    if missing:
        raise ValidationError({name: [f"Unknown: {', '.join(missing)}."]})
    return list(found.values())


class ApiKeyList(APIView):
    permission_classes = [IsHubAdmin]

    def get(self, request):
        keys = ApiKey.objects.prefetch_related("systems", "plants")
        return Response({"results": [key_data(k) for k in keys]})

    def post(self, request):
        """A new reporter key; the raw key is in this answer only and stored nowhere."""
        data = request.data if isinstance(request.data, dict) else {}
        name = data.get("name")
        if not isinstance(name, str) or not name.strip() or len(name) > 200:
            raise ValidationError({"name": ["Who reports with it: 1-200 characters."]})
        systems, plants = _codes(System, data, "systems"), _codes(Plant, data, "plants")
        _rate_limit(data, ApiKey())  # validated before anything is stored
        key, raw = ApiKey.issue(
            name.strip(),
            systems=systems,
            plants=plants,
            **{name: data.get(name) for name in RATE_FIELDS},
        )
        return Response({**key_data(key), "key": raw}, status=status.HTTP_201_CREATED)


class ApiKeyDetail(APIView):
    permission_classes = [IsHubAdmin]

    def get(self, request, pk):
        return Response(key_data(get_object_or_404(ApiKey, pk=pk)))

    def patch(self, request, pk):
        """Change the key's rate limit: `events_per_second` and `burst` (null: unlimited)."""
        key = get_object_or_404(ApiKey, pk=pk)
        data = request.data if isinstance(request.data, dict) else {}
        unknown = sorted(set(data) - set(RATE_FIELDS))
        if unknown:
            raise ValidationError({unknown[0]: ["Only events_per_second and burst change."]})
        _rate_limit(data, key)
        key.save(update_fields=list(RATE_FIELDS))
        return Response(key_data(key))

    @extend_schema(responses={200: OpenApiTypes.OBJECT})
    def delete(self, request, pk):
        """Revoke: the key stops working at once; the row stays for the record."""
        key = get_object_or_404(ApiKey, pk=pk)
        key.revoke()
        return Response(key_data(key))


class ApiKeyRevoke(APIView):
    permission_classes = [IsHubAdmin]

    def post(self, request, pk):
        return ApiKeyDetail().delete(request, pk)
