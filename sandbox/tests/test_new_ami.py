"""``python -m drsandbox new-ami``: last night's backup reaches the standby vault. After it,
the standby vault's newest COMPLETED recovery point (by its AMI's CreationDate, as drctl's
``ec2.latest_image`` picks it) is an available AMI that the standby launch templates do not
run yet, strictly newer than the seeded copy even when both were made within one second.
"""

import json

from conftest import run_cli

from drsandbox import cli

STANDBY = "us-west-2"


def _default_amis(sbx, topo) -> dict:
    ec2 = sbx.client("ec2", STANDBY)
    return {tier: ec2.describe_launch_template_versions(LaunchTemplateId=g["launch_template_id"], Versions=["$Default"])
            ["LaunchTemplateVersions"][0]["LaunchTemplateData"]["ImageId"]
            for tier, g in topo["regions"][STANDBY]["asgs"].items()}


def _vault_images(sbx, topo) -> dict:
    """ImageId -> (image, recovery point) of the standby vault's COMPLETED EC2 recovery points."""
    vault = topo["regions"][STANDBY]["backup_vault"]["name"]
    points = {p["RecoveryPointArn"].split("/")[-1]: p for p in sbx.client("backup", STANDBY)
              .list_recovery_points_by_backup_vault(BackupVaultName=vault)["RecoveryPoints"]
              if p["Status"] == "COMPLETED"}
    images = sbx.client("ec2", STANDBY).describe_images(ImageIds=sorted(points))["Images"]
    return {i["ImageId"]: (i, points[i["ImageId"]]) for i in images}


def _latest_image(sbx, topo) -> str:
    """What drctl's ec2.latest_image answers: the newest available image of the vault."""
    available = [i for i, _ in _vault_images(sbx, topo).values() if i["State"] == "available"]
    newest = max(i["CreationDate"] for i in available)
    tied = [i["ImageId"] for i in available if i["CreationDate"] == newest]
    assert len(tied) == 1, f"a tie for the newest image: {tied}"
    return tied[0]


def test_new_ami_puts_a_newer_image_in_the_standby_vault(seeded, capsys):
    """With the seed's directory (subprocess) and without it (names found through the API,
    in-process main()): each run prints one JSON line, and its copy becomes the standby
    vault's newest image, strictly newer than the one the launch templates run, which stay
    as they were."""
    sbx, topo, out = seeded
    lt_amis = _default_amis(sbx, topo)
    seeded_ami = topo["backup"]["copied_ami_id"]
    assert set(lt_amis.values()) == {seeded_ami}
    assert _latest_image(sbx, topo) == seeded_ami
    before = _vault_images(sbx, topo)[seeded_ami]

    r = run_cli("new-ami", "--endpoint", sbx.url, "--dir", str(out))
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert len(lines) == 1, r.stdout
    first = json.loads(lines[0])
    assert set(first) == {"recovery_point_arn", "copied_ami_id", "region"}
    assert first["region"] == STANDBY
    assert first["recovery_point_arn"] == f"arn:aws:ec2:{STANDBY}::image/{first['copied_ami_id']}"

    def check(result, older):
        ami = result["copied_ami_id"]
        image, point = _vault_images(sbx, topo)[ami]
        assert point["Status"] == "COMPLETED" and point["RecoveryPointArn"] == result["recovery_point_arn"]
        assert image["State"] == "available"
        assert ami not in lt_amis.values()
        assert image["CreationDate"] > older[0]["CreationDate"], (image["CreationDate"], older[0]["CreationDate"])
        assert point["CreationDate"] > older[1]["CreationDate"]
        assert _latest_image(sbx, topo) == ami
        return image, point

    after_first = check(first, before)

    # Again, right away (the two copies are well within one second of each other at this
    # profile's speed), finding the vaults and the ASG through the API.
    capsys.readouterr()
    assert cli.main(["new-ami", "--endpoint", sbx.url]) == 0
    second = json.loads(capsys.readouterr().out)
    assert second["copied_ami_id"] != first["copied_ami_id"]
    check(second, after_first)

    assert _default_amis(sbx, topo) == lt_amis, "new-ami must not touch the launch templates"


def test_new_ami_errors_are_one_line(sbx, tmp_path):
    """No seeded sandbox, no topology.json, an unreachable or malformed endpoint: a non-zero
    exit with a one-line message and no traceback."""
    cases = [
        (["--endpoint", sbx.url], 1, "is the sandbox seeded"),
        (["--endpoint", sbx.url, "--dir", str(tmp_path)], 1, "topology.json"),
        (["--endpoint", sbx.url, "--dir", str(tmp_path / "missing")], 2, "no such directory"),
        (["--endpoint", "http://127.0.0.1:9"], 1, "cannot reach"),
        (["--endpoint", "not-a-url"], 2, "bad endpoint"),
    ]
    (tmp_path / "x").mkdir()
    (tmp_path / "x" / "topology.json").write_text('{"regions": {}}')
    cases.append((["--endpoint", sbx.url, "--dir", str(tmp_path / "x")], 1, "not a seed's topology.json"))
    for args, code, needle in cases:
        r = run_cli("new-ami", *args)
        assert r.returncode == code, (args, r.stdout, r.stderr)
        assert needle in r.stderr and r.stdout == "", (args, r.stderr)
        assert len(r.stderr.strip().splitlines()) == 1 and "Traceback" not in r.stderr, (args, r.stderr)
