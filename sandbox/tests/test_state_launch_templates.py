"""/_sandbox/state's per-region ``launch_templates``: what a test reads to see that a launch
template got exactly one new version and which image its default version runs."""

from __future__ import annotations

import uuid

from drsandbox.seed import BASE_AMI

REGIONS = {"us-east-1": "use1", "us-west-2": "usw2"}


def _state(sbx) -> dict:
    status, st = sbx.control("GET", "/_sandbox/state")
    assert status == 200, st
    return st


def _templates(sbx, region: str) -> dict:
    return {t["name"]: t for t in _state(sbx)["regions"][region]["launch_templates"]}


def test_seeded_launch_templates_then_one_new_default_version(seeded):
    sbx, topo, _ = seeded
    st = _state(sbx)
    for region, short in REGIONS.items():
        lts = st["regions"][region]["launch_templates"]
        # Sorted by name, exactly the two tiers', each as the seed made it: one version, the default.
        assert [t["name"] for t in lts] == [f"shop-backend-{short}", f"shop-frontend-{short}"]
        asgs = topo["regions"][region]["asgs"]
        # The primary runs the base image, the standby the AMI copied into its vault.
        ami = BASE_AMI if region == "us-east-1" else topo["backup"]["copied_ami_id"]
        for t in lts:
            tier = t["name"].split("-")[1]
            assert t == {"id": asgs[tier]["launch_template_id"], "name": asgs[tier]["launch_template_name"],
                         "default_version": 1, "latest_version": 1, "versions": 1, "default_image_id": ami}
            assert asgs[tier]["ami_id"] == ami
    # The rest of the shape is still there.
    for key in ("writer", "databases", "asgs", "dark", "app_database", "app_database_region"):
        assert key in st["regions"]["us-west-2"]

    # A new AMI from one of the standby's instances, and a new launch template version on it.
    region = "us-west-2"
    ec2 = sbx.client("ec2", region)
    lt = topo["regions"][region]["asgs"]["frontend"]
    instance = ec2.describe_instances(Filters=[{"Name": "tag:tier", "Values": ["frontend"]},
                                               {"Name": "instance-state-name", "Values": ["running"]}])
    instance_id = instance["Reservations"][0]["Instances"][0]["InstanceId"]
    new_ami = ec2.create_image(InstanceId=instance_id, Name=f"shop-frontend-{uuid.uuid4().hex[:8]}")["ImageId"]
    assert new_ami != lt["ami_id"]
    v = ec2.create_launch_template_version(LaunchTemplateId=lt["launch_template_id"], SourceVersion="1",
                                           LaunchTemplateData={"ImageId": new_ami},
                                           VersionDescription="new AMI")["LaunchTemplateVersion"]
    assert v["VersionNumber"] == 2

    # Not the default yet: the count and the latest move, the default and its image do not.
    t = _templates(sbx, region)[lt["launch_template_name"]]
    assert (t["versions"], t["latest_version"], t["default_version"], t["default_image_id"]) == \
        (2, 2, 1, lt["ami_id"])

    ec2.modify_launch_template(LaunchTemplateId=lt["launch_template_id"], DefaultVersion="2")
    t = _templates(sbx, region)[lt["launch_template_name"]]
    assert t == {"id": lt["launch_template_id"], "name": lt["launch_template_name"], "default_version": 2,
                 "latest_version": 2, "versions": 2, "default_image_id": new_ami}

    # Every other template, in both regions, is untouched.
    for r, short in REGIONS.items():
        for name, other in _templates(sbx, r).items():
            if name != lt["launch_template_name"]:
                assert (other["versions"], other["latest_version"], other["default_version"]) == (1, 1, 1), other


def test_launch_template_only_region_is_listed(sbx):
    """A region whose only resource is a launch template still appears, with the usual keys."""
    ec2 = sbx.client("ec2", "us-west-2")
    lt = ec2.create_launch_template(LaunchTemplateName="solo", LaunchTemplateData={})["LaunchTemplate"]
    st = _state(sbx)
    reg = st["regions"]["us-west-2"]
    assert reg["launch_templates"] == [{"id": lt["LaunchTemplateId"], "name": "solo", "default_version": 1,
                                        "latest_version": 1, "versions": 1, "default_image_id": None}]
    assert reg["databases"] == [] and reg["asgs"] == [] and reg["writer"] == []
    assert "us-east-1" not in st["regions"] or st["regions"]["us-east-1"]["launch_templates"] == []
