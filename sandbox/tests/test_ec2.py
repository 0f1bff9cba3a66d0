"""EC2 launch template versions: SourceVersion and ClientToken as EC2 has them.

Plain moto's CreateLaunchTemplateVersion ignores SourceVersion (the new version holds only the
fields the request names) and ClientToken (every retry makes one more version).
"""

import uuid

import pytest
from botocore.exceptions import ClientError

AMI = "ami-04681a1dbd79675a5"


def _template(ec2):
    return ec2.create_launch_template(LaunchTemplateName=f"lt-{uuid.uuid4().hex[:8]}", LaunchTemplateData={
        "ImageId": AMI, "InstanceType": "t3.micro", "SecurityGroupIds": ["sg-12345678"],
        "TagSpecifications": [{"ResourceType": "instance", "Tags": [{"Key": "app", "Value": "shop"}]}]})["LaunchTemplate"]


def _data(ec2, template_id, version):
    return ec2.describe_launch_template_versions(LaunchTemplateId=template_id, Versions=[str(version)])[
        "LaunchTemplateVersions"][0]["LaunchTemplateData"]


def test_source_version_is_the_base_of_the_new_version(sbx):
    """With SourceVersion the new version keeps the source's data and overrides only what the
    request names (moto: the new version holds ImageId alone, no InstanceType, no security
    groups, no tags)."""
    ec2 = sbx.client("ec2")
    lt = _template(ec2)
    v2 = ec2.create_launch_template_version(LaunchTemplateId=lt["LaunchTemplateId"], SourceVersion="1",
                                            VersionDescription="new AMI",
                                            LaunchTemplateData={"ImageId": "ami-0000000000000abcd"})
    assert v2["LaunchTemplateVersion"]["VersionNumber"] == 2
    data = _data(ec2, lt["LaunchTemplateId"], 2)
    assert data["ImageId"] == "ami-0000000000000abcd"
    assert data["InstanceType"] == "t3.micro" and data["SecurityGroupIds"] == ["sg-12345678"]
    assert data["TagSpecifications"][0]["Tags"] == [{"Key": "app", "Value": "shop"}]
    assert _data(ec2, lt["LaunchTemplateId"], 1)["ImageId"] == AMI  # the source is untouched
    # Without SourceVersion a version holds only what it names, as on EC2.
    ec2.create_launch_template_version(LaunchTemplateId=lt["LaunchTemplateId"], LaunchTemplateData={"ImageId": AMI})
    assert "InstanceType" not in _data(ec2, lt["LaunchTemplateId"], 3)
    with pytest.raises(ClientError) as e:
        ec2.create_launch_template_version(LaunchTemplateId=lt["LaunchTemplateId"], SourceVersion="9",
                                           LaunchTemplateData={"ImageId": AMI})
    assert e.value.response["Error"]["Code"] == "InvalidLaunchTemplateId.VersionNotFound"


def test_client_token_makes_version_creation_idempotent(sbx):
    """The same ClientToken and request return the version made the first time and make no
    other; the same token with another request is IdempotentParameterMismatch (moto: every
    call makes a new version, the token is ignored)."""
    ec2 = sbx.client("ec2")
    lt = _template(ec2)
    token = str(uuid.uuid4())
    args = dict(LaunchTemplateId=lt["LaunchTemplateId"], SourceVersion="1", ClientToken=token,
                LaunchTemplateData={"ImageId": "ami-0000000000000abcd"})
    first = ec2.create_launch_template_version(**args)["LaunchTemplateVersion"]
    again = ec2.create_launch_template_version(**args)["LaunchTemplateVersion"]
    assert first["VersionNumber"] == again["VersionNumber"] == 2
    assert again["LaunchTemplateData"]["ImageId"] == "ami-0000000000000abcd"
    versions = ec2.describe_launch_template_versions(LaunchTemplateId=lt["LaunchTemplateId"])["LaunchTemplateVersions"]
    assert sorted(v["VersionNumber"] for v in versions) == [1, 2]
    with pytest.raises(ClientError) as e:
        ec2.create_launch_template_version(**{**args, "LaunchTemplateData": {"ImageId": AMI}})
    assert e.value.response["Error"]["Code"] == "IdempotentParameterMismatch"
    other = _template(ec2)
    with pytest.raises(ClientError) as e:
        ec2.create_launch_template_version(**{**args, "LaunchTemplateId": other["LaunchTemplateId"]})
    assert e.value.response["Error"]["Code"] == "IdempotentParameterMismatch"
    # A fresh token makes a new version.
    fresh = ec2.create_launch_template_version(**{**args, "ClientToken": str(uuid.uuid4())})["LaunchTemplateVersion"]
    assert fresh["VersionNumber"] == 3
