"""Forms of the portal's organisation pages: they parse and validate input; the services decide.

Choices are narrowed to what the signed-in member could use (roles they may grant, scopes they
hold), so the page never offers an action the service would refuse; the service still checks.
`add_service_error` puts a service's refusal back on the form, next to the field it concerns.
"""

from __future__ import annotations

from collections.abc import Iterable

from django import forms

from accounts.permissions import LEVELS, RESOURCES, Role
from accounts.services import KEY_DEFAULT_DAYS, KEY_MAX_DAYS
from nexow_site.errors import ApplicationError


def add_service_error(form: forms.Form, error: ApplicationError) -> None:
    """Shows a service's error inline: on its fields when the form has them, else on top."""
    placed = False
    for field, messages in (error.fields or {}).items():
        target = field if field in form.fields else None
        for message in messages if isinstance(messages, list | tuple) else [messages]:
            form.add_error(target, str(message))
            placed = True
    if not placed:
        form.add_error(None, error.message)


def role_choices(roles: Iterable[str] | None = None) -> list[tuple[str, str]]:
    allowed = set(Role.values if roles is None else roles)
    return [(role.value, role.label) for role in Role if role.value in allowed]


class OrganizationCreateForm(forms.Form):
    name = forms.CharField(label="Organisation name", max_length=200)
    slug = forms.SlugField(
        label="Short name in URLs", max_length=60, required=False,
        help_text="Lower-case letters, digits and hyphens. Leave empty to derive it from the name.",
    )


class OrganizationSettingsForm(forms.Form):
    name = forms.CharField(label="Organisation name", max_length=200)


class OrganizationDeleteForm(forms.Form):
    confirm = forms.CharField(label="Type the organisation's URL name to confirm", max_length=60)

    def __init__(self, *args, slug: str, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.slug = slug

    def clean_confirm(self) -> str:
        value = self.cleaned_data["confirm"].strip()
        if value != self.slug:
            raise forms.ValidationError(f"Type “{self.slug}” exactly.")
        return value


class InvitationForm(forms.Form):
    email = forms.EmailField(label="E-mail address")
    role = forms.ChoiceField(label="Role")

    def __init__(self, *args, grantable_roles: Iterable[str], **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.fields["role"].choices = role_choices(grantable_roles)
        # The least powerful role the inviter may grant is the safe default.
        if self.fields["role"].choices:
            self.fields["role"].initial = self.fields["role"].choices[-1][0]


class MemberRoleForm(forms.Form):
    role = forms.ChoiceField(label="Role")

    def __init__(self, *args, grantable_roles: Iterable[str], **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.fields["role"].choices = role_choices(grantable_roles)


def scope_choices(held: Iterable[str]) -> list[tuple[str, str]]:
    """The caller's scopes, in matrix order (resource, then level)."""
    held = set(held)
    return [
        (f"{res}:{lvl}", f"{res}:{lvl}")
        for res in RESOURCES for lvl in LEVELS if f"{res}:{lvl}" in held
    ]


class ApiKeyCreateForm(forms.Form):
    name = forms.CharField(label="Key name", max_length=100,
                           help_text="What the key is for, e.g. “research notebook”.")
    expires_in_days = forms.IntegerField(
        label="Expires after (days)", min_value=1, max_value=KEY_MAX_DAYS,
        initial=KEY_DEFAULT_DAYS,
        help_text=f"Every key expires; at most {KEY_MAX_DAYS} days.",
    )
    scopes = forms.MultipleChoiceField(
        label="Scopes", required=False, widget=forms.CheckboxSelectMultiple,
        help_text="Leave all unticked to give the key your own permissions. "
                  "A key can never do more than your role allows.",
    )

    def __init__(self, *args, held_scopes: Iterable[str], **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.fields["scopes"].choices = scope_choices(held_scopes)


class AuditFilterForm(forms.Form):
    action = forms.CharField(
        label="Action", required=False, max_length=80,
        help_text="A prefix: “member” matches member.role_changed, member.removed, …",
    )
    actor = forms.TypedChoiceField(label="Who", required=False, coerce=int, empty_value=None)
    since = forms.DateField(label="From (UTC date)", required=False,
                            widget=forms.DateInput(attrs={"type": "date"}))
    until = forms.DateField(label="Until (UTC date, inclusive)", required=False,
                            widget=forms.DateInput(attrs={"type": "date"}))

    def __init__(self, *args, actors: Iterable[tuple[int, str]], **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.fields["actor"].choices = [("", "Anyone"), *actors]

    def clean(self) -> dict:
        data = super().clean()
        since, until = data.get("since"), data.get("until")
        if since and until and until < since:
            self.add_error("until", "The end date is before the start date.")
        return data
