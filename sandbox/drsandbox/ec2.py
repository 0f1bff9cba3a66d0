"""EC2 launch template versions as EC2 makes them.

moto's CreateLaunchTemplateVersion ignores SourceVersion (the new version holds only what the
request names) and ClientToken (a retried request makes another version). Here:

* With SourceVersion, the new version starts from that version's LaunchTemplateData and the
  request's LaunchTemplateData overrides it key by key (top-level parameters, as EC2 does:
  "the new version inherits the launch parameters of the source version, except for the
  parameters that you specify"). An unknown source version is
  InvalidLaunchTemplateId.VersionNotFound.
* ClientToken makes the request idempotent, per account and region: the same token with the
  same request returns the version it created the first time, and no new version; the same
  token with a different request (another template, source version, data or description) is
  IdempotentParameterMismatch.
"""

from __future__ import annotations

import copy
import json
import threading

from moto.core.responses import ActionResult
from moto.ec2.exceptions import EC2ClientError
from moto.ec2.responses.launch_templates import LaunchTemplates
from moto.ec2.utils import parse_user_data

_SB = None
_lock = threading.Lock()


def _fingerprint(*parts) -> str:
    return json.dumps(parts, sort_keys=True, default=str)


def _create_launch_template_version(self) -> ActionResult:
    name = self._get_param("LaunchTemplateName")
    tmpl_id = self._get_param("LaunchTemplateId")
    if not name and not tmpl_id:
        raise EC2ClientError("MissingParameter", "The request must contain the parameter LaunchTemplateName or "
                                                 "LaunchTemplateId")
    template = (self.ec2_backend.get_launch_template(tmpl_id) if tmpl_id
                else self.ec2_backend.get_launch_template_by_name(name))
    description = self._get_param("VersionDescription")
    requested = self._get_param("LaunchTemplateData", {}) or {}
    if "UserData" in requested:
        requested["UserData"] = parse_user_data(self._get_param("LaunchTemplateData.UserData"))
    source_version = self._get_param("SourceVersion")
    token = self._get_param("ClientToken")
    self.error_on_dryrun()

    with _lock:  # a retried request racing its first attempt must still make one version
        tokens = self.ec2_backend.__dict__.setdefault("_sbx_lt_client_tokens", {})
        fingerprint = _fingerprint(template.id, source_version, requested, description)
        if token is not None and token in tokens:
            template_id, number, seen = tokens[token]
            if seen != fingerprint:
                raise EC2ClientError("IdempotentParameterMismatch",
                                     f"The client token {token} was already used with different request "
                                     "parameters.")
            version = template.get_version(number)
        else:
            data = requested
            if source_version is not None:
                data = copy.deepcopy(template.get_version(source_version).data)
                data.update(requested)
            version = template.create_version(data, description)
            if token is not None:
                tokens[token] = (template.id, version.number, fingerprint)

    return ActionResult({
        "LaunchTemplateVersion": {
            "CreateTime": version.create_time,
            "CreatedBy": f"arn:{self.partition}:iam::{self.current_account}:root",
            "DefaultVersion": template.is_default(version),
            "LaunchTemplateData": version.data,
            "LaunchTemplateId": template.id,
            "LaunchTemplateName": template.name,
            "VersionDescription": version.description,
            "VersionNumber": version.number,
        },
    })


_installed = False


def install(sandbox) -> None:
    global _SB, _installed
    _SB = sandbox
    if _installed:
        return
    _installed = True
    LaunchTemplates.create_launch_template_version = _create_launch_template_version
