"""The real-Azure target's host paths with Azure faked at its boundary.

Each path (verify/targets/azure_hosts) is driven through ``AzureTarget.probe`` with the
clients it really calls replaced: azure-mgmt-compute's scale-set VM operations (SDK model
types), and a ``requests.Session`` stand-in for the bearer-token HTTPS calls to ARM, Kudu,
Log Analytics and a cluster's API server. The tests read back the requests each path
sends, its bounds, its error handling (a timeout, a job that never completes, a 403 that
names the missing permission), and that the operator's token never reaches a message.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from typing import Any

import pytest
import yaml
from azure.core.credentials import AccessToken
from azure.core.exceptions import HttpResponseError
from azure.mgmt.compute.models import InstanceViewStatus, RunCommandResult
from verify_world import RG, sample_outputs

from verify.probe import RESULT_BEGIN, RESULT_END
from verify.targets import azure_hosts
from verify.targets.azure import AzureTarget
from verify.targets.azure_hosts.aks import WORKLOAD_IDENTITY_LABEL, AksPath
from verify.targets.azure_hosts.app_service import AppServicePath
from verify.targets.azure_hosts.base import (
    HostProbeError,
    HostTimeoutError,
    MissingPermissionError,
)
from verify.targets.azure_hosts.container_app import ContainerAppPath
from verify.targets.azure_hosts.launcher import SOURCE_ENV
from verify.targets.azure_hosts.rest import AKS_SCOPE, ARM_SCOPE, LOG_ANALYTICS_SCOPE
from verify.targets.azure_hosts.run_command import (
    RUN_COMMAND_OVERHEAD_SECONDS,
    RunCommandTimeoutError,
)
from verify.targets.azure_hosts.scale_set import ScaleSetPath
from verify.targets.azure_hosts.vm import VmPath
from verify.targets.base import ProbeRequest
from verify.targets.cloud_init import DEFAULT_CLOUD_INIT_WAIT_SECONDS

TOKEN = "eyJ0eXAi.OPERATOR-TOKEN-NEVER-PRINTED.sig"
SHARED_CID = sample_outputs()["identities"]["shared"]["client_id"]
SHARED_ID = sample_outputs()["identities"]["shared"]["id"]
APP_ID = f"{RG}/providers/Microsoft.Web/sites/app-web"
CA_ID = f"{RG}/providers/Microsoft.App/containerApps/ca-jobs"
ENV_ID = f"{RG}/providers/Microsoft.App/managedEnvironments/cae-demo"
AKS_ID = f"{RG}/providers/Microsoft.ContainerService/managedClusters/aks-demo"
SERVER = "https://aks-demo-dns-1234.hcp.westeurope.azmk8s.io:443"


def probe_output(passed: bool = True, selector: str = "system") -> str:
    """What verify/probe.py prints: its JSON between the markers (plain JSON form)."""
    result = {
        "probe_version": 1,
        "vault_url": "https://kv-demo.vault.azure.net/",
        "identities": [],
        "passed": passed,
        "selector_seen": selector,
    }
    return f"noise\n{RESULT_BEGIN}\n{json.dumps(result)}\n{RESULT_END}\n"


def outputs() -> dict[str, Any]:
    raw = sample_outputs()
    raw["apps"] = {
        "web": {"kind": "webapp", "name": "app-web", "id": APP_ID, "system_principal_id": "p"},
        "func": {"kind": "functionapp", "name": "func-1", "id": f"{RG}/x/sites/func-1"},
        "jobs": {"kind": "containerapp", "name": "ca-jobs", "id": CA_ID},
        "odd": {"kind": "staticsite", "name": "odd", "id": f"{RG}/x/odd"},
    }
    raw["scale_sets"] = {
        "fleet": {"name": "vmss-fleet", "id": f"{RG}/x/vmss-fleet", "instances": 2}
    }
    raw["clusters"] = {
        "aks": {
            "name": "aks-demo",
            "id": AKS_ID,
            "oidc_issuer_url": "https://westeurope.oic.prod-aks.azure.com/t/g/",
            "workloads": {
                "api": {
                    "namespace": "api",
                    "service_account": "api-sa",
                    "subject": "system:serviceaccount:api:api-sa",
                    "identity": "shared",
                    "client_id": SHARED_CID,
                },
                "batch": {
                    "namespace": "batch",
                    "service_account": "default",
                    "subject": "system:serviceaccount:batch:default",
                    "identity": None,
                    "client_id": None,
                },
            },
        }
    }
    return raw


class Credential:
    def __init__(self) -> None:
        self.scopes: list[str] = []

    def get_token(self, *scopes: str, **kwargs: Any) -> AccessToken:
        self.scopes.extend(scopes)
        return AccessToken(TOKEN, 4102444800)


class Response:
    def __init__(self, status: int, body: Any = None, headers: dict[str, str] | None = None):
        self.status_code = status
        self.text = body if isinstance(body, str) else ("" if body is None else json.dumps(body))
        self.headers = headers or {}


Handler = Callable[[str, str, dict[str, Any]], Response]


class Session:
    """``requests.Session.request`` stand-in: the first route whose (method, url part)
    matches answers; every call is recorded."""

    def __init__(self, routes: list[tuple[str, str, Handler | Response]]) -> None:
        self.routes = routes
        self.calls: list[tuple[str, str, dict[str, Any]]] = []
        self.closed = False

    def request(self, method: str, url: str, **kwargs: Any) -> Response:
        self.calls.append((method, url, kwargs))
        for verb, part, answer in self.routes:
            if verb == method and part in url:
                return answer(method, url, kwargs) if callable(answer) else answer
        return Response(404, {"error": {"code": "NotFound"}})

    def close(self) -> None:
        self.closed = True

    def called(self, method: str, part: str) -> list[dict[str, Any]]:
        return [kw for m, u, kw in self.calls if m == method and part in u]


class Clock:
    """A fake monotonic clock that sleeping advances."""

    def __init__(self) -> None:
        self.now = 0.0
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += max(seconds, 1.0)


def target(session: Any = None, compute: Any = None, **kw: Any) -> AzureTarget:
    return AzureTarget(
        outputs=outputs(),
        credential=Credential(),
        compute=compute or object(),
        msi=object(),
        authorization=object(),
        http=session,
        **kw,
    )


def run(t: AzureTarget, request: ProbeRequest, clock: Clock | None = None) -> Any:
    """The path's outcome for one request, with a fake clock (no real sleeping)."""
    ctx = t.host_context()
    if clock is not None:
        ctx.clock, ctx.sleep = clock, clock.sleep
    return azure_hosts.path_for(request.host_kind).probe(ctx, request)


def req(host: str, kind: str, selectors: tuple[str, ...] = ("system",), **kw: Any) -> ProbeRequest:
    return ProbeRequest(host=host, host_kind=kind, selectors=selectors, secrets=("api-key",), **kw)


def assert_no_token(*texts: str) -> None:
    for text in texts:
        assert TOKEN not in text
        assert "OPERATOR-TOKEN" not in text


# ------------------------------------------------------------------ the table


def test_one_table_maps_every_host_kind_to_its_path() -> None:
    assert isinstance(azure_hosts.HOST_PATHS["vm"], VmPath)
    assert isinstance(azure_hosts.HOST_PATHS["scaleset"], ScaleSetPath)
    assert isinstance(azure_hosts.HOST_PATHS["workload"], AksPath)
    assert isinstance(azure_hosts.HOST_PATHS["workload_without_identity"], AksPath)
    assert isinstance(azure_hosts.APP_PATHS["webapp"], AppServicePath)
    assert isinstance(azure_hosts.APP_PATHS["functionapp"], AppServicePath)
    assert isinstance(azure_hosts.APP_PATHS["containerapp"], ContainerAppPath)
    for path in [*azure_hosts.HOST_PATHS.values(), *azure_hosts.APP_PATHS.values()]:
        assert path.permissions, path


def test_an_unknown_host_kind_is_that_hosts_outcome_naming_the_known_ones() -> None:
    outcomes = target().probe([req("x", "mainframe")])
    error = outcomes["x"]
    assert isinstance(error, HostProbeError)
    assert "'mainframe'" in str(error) and "scaleset" in str(error) and "app" in str(error)


def test_an_app_of_an_unknown_kind_names_the_app_kinds() -> None:
    with pytest.raises(HostProbeError, match=r"staticsite.*containerapp, functionapp, webapp"):
        run(target(Session([])), req("odd", "app"))


# ------------------------------------------------------------------ scale sets


class ScaleSetVM:
    def __init__(self, instance_id: str) -> None:
        self.instance_id = instance_id


class Poller:
    def __init__(self, result: Any, done: bool = True) -> None:
        self._result, self._done = result, done
        self.waited: float | None = None

    def wait(self, timeout: float | None = None) -> None:
        self.waited = timeout

    def done(self) -> bool:
        return self._done

    def result(self) -> Any:
        assert self._done, "result() of an unfinished poller"
        return self._result


class ScaleSetVMs:
    def __init__(self, outputs_by_instance: dict[str, str], done: bool = True) -> None:
        self.outputs = outputs_by_instance
        self.done = done
        self.runs: list[tuple[str, str, str, Any, dict[str, Any]]] = []
        self.pollers: list[Poller] = []
        self.list_status: int | None = None

    def list(self, rg: str, name: str, **kwargs: Any) -> list[ScaleSetVM]:
        if self.list_status is not None:
            raise HttpResponseError(message="AuthorizationFailed", response=None)
        return [ScaleSetVM(i) for i in self.outputs]

    def begin_run_command(
        self, rg: str, name: str, instance_id: str, parameters: Any, **kwargs: Any
    ) -> Poller:
        self.runs.append((rg, name, instance_id, parameters, kwargs))
        text = self.outputs[instance_id]
        status = InstanceViewStatus(code="ProvisioningState/succeeded", message=text)
        poller = Poller(RunCommandResult(value=[status]), self.done)
        self.pollers.append(poller)
        return poller


class Compute:
    def __init__(self, vmss_vms: ScaleSetVMs) -> None:
        self.virtual_machine_scale_set_vms = vmss_vms


def test_a_scale_set_runs_the_vm_script_on_every_instance_within_the_vm_bound() -> None:
    vms = ScaleSetVMs({"0": probe_output(), "3": probe_output(passed=False)})
    result = run(target(compute=Compute(vms), polling_interval=2.0), req("fleet", "scaleset"))
    assert [r[2] for r in vms.runs] == ["0", "3"]
    assert {(r[0], r[1]) for r in vms.runs} == {("rg-demo", "vmss-fleet")}
    for _, _, _, parameters, kwargs in vms.runs:
        assert parameters.command_id == "RunShellScript"
        script = "\n".join(parameters.script)
        assert f"timeout {DEFAULT_CLOUD_INIT_WAIT_SECONDS} cloud-init status --wait" in script
        assert '"$PY" - --spec-b64 ' in script and "def main(" in script
        assert kwargs == {"polling_interval": 2.0}
    bound = DEFAULT_CLOUD_INIT_WAIT_SECONDS + 30.0 + 5.0 + RUN_COMMAND_OVERHEAD_SECONDS
    assert [p.waited for p in vms.pollers] == [bound, bound]
    # The instance that did not pass speaks for the set.
    assert result.passed is False


def test_scale_set_host_names_with_their_kind_prefix_resolve_too() -> None:
    vms = ScaleSetVMs({"0": probe_output()})
    assert run(target(compute=Compute(vms)), req("scaleset:fleet", "scaleset")).passed


def test_a_scale_set_instance_that_never_reports_back_is_given_up_at_the_bound() -> None:
    vms = ScaleSetVMs({"0": probe_output()}, done=False)
    with pytest.raises(RunCommandTimeoutError, match="vmss-fleet instance 0 did not finish"):
        run(target(compute=Compute(vms)), req("fleet", "scaleset"))


def test_a_scale_set_instance_without_a_result_names_the_instance() -> None:
    vms = ScaleSetVMs({"0": probe_output(), "1": "Traceback: no module named azure"})
    with pytest.raises(HostProbeError, match="vmss-fleet instance 1 gave no probe result"):
        run(target(compute=Compute(vms)), req("fleet", "scaleset"))


def test_a_403_listing_instances_names_the_permission() -> None:
    class Refusing(ScaleSetVMs):
        def list(self, rg: str, name: str, **kwargs: Any) -> list[ScaleSetVM]:
            error = HttpResponseError(message="AuthorizationFailed")
            error.status_code = 403
            raise error

    with pytest.raises(MissingPermissionError) as info:
        run(target(compute=Compute(Refusing({}))), req("fleet", "scaleset"))
    assert "virtualMachineScaleSets/virtualMachines/read" in str(info.value)
    assert "Virtual Machine Contributor" in str(info.value)


# ------------------------------------------------------------------ App Service / Functions


def site(scm: str = "app-web.scm.azurewebsites.net") -> dict[str, Any]:
    return {
        "id": APP_ID,
        "properties": {
            "hostNameSslStates": [
                {"name": "app-web.azurewebsites.net", "hostType": "Standard"},
                {"name": scm, "hostType": "Repository"},
            ]
        },
    }


def kudu_session(
    run_output: str, install: str = "PY=/home/data/mikit-probe/venv/bin/python"
) -> Session:
    def command(method: str, url: str, kw: dict[str, Any]) -> Response:
        text = kw["json"]["command"]
        if text.startswith("bash -c"):
            return Response(200, {"Output": f"{install}\n", "Error": "", "ExitCode": 0})
        return Response(200, {"Output": run_output, "Error": "", "ExitCode": 0})

    return Session(
        [
            ("GET", APP_ID, Response(200, site())),
            ("PUT", "/api/vfs/", Response(201)),
            ("POST", "/api/command", command),
            ("DELETE", "/api/vfs/", Response(204)),
        ]
    )


def test_a_web_app_runs_the_probe_through_kudu_with_an_entra_token() -> None:
    session = kudu_session(probe_output())
    t = target(session)
    result = run(t, req("web", "app"))
    assert result.passed
    methods = [(m, u.split("?")[0]) for m, u, _ in session.calls]
    scm = "https://app-web.scm.azurewebsites.net"
    assert methods[0] == ("GET", f"https://management.azure.com{APP_ID}")
    assert methods[1][0] == "PUT" and methods[1][1].startswith(f"{scm}/api/vfs/data/mikit-probe/")
    assert methods[2:4] == [("POST", f"{scm}/api/command")] * 2
    assert methods[4][0] == "DELETE" and methods[4][1] == methods[1][1]
    for _, _, kw in session.calls:
        assert kw["headers"]["Authorization"] == f"Bearer {TOKEN}"
        assert kw["timeout"] <= 230
    assert set(t.credential.scopes) == {ARM_SCOPE}
    (put,) = session.called("PUT", "/api/vfs/")
    assert put["headers"]["If-Match"] == "*" and b"def main(" in put["data"]
    install, probe = session.called("POST", "/api/command")
    assert "python3 -m venv /home/data/mikit-probe/venv" in install["json"]["command"]
    assert "azure-identity>=1.27,<2" in install["json"]["command"]
    assert probe["json"]["command"].startswith("/home/data/mikit-probe/venv/bin/python ")
    assert "--spec-b64 " in probe["json"]["command"] and probe["json"]["dir"] == "/home"
    spec_b64 = probe["json"]["command"].split("--spec-b64 ")[1].split()[0]
    spec = json.loads(base64.b64decode(spec_b64))
    assert spec["identities"] == ["system"] and spec["secrets"] == ["api-key"]
    assert probe["timeout"] == 30.0 + 5.0 + 30.0


def test_a_function_app_takes_the_same_kudu_path() -> None:
    session = kudu_session(probe_output())
    session.routes[0] = ("GET", "sites/func-1", Response(200, site("func-1.scm.azurewebsites.net")))
    assert run(target(session), req("func", "app")).passed
    assert any("func-1.scm.azurewebsites.net/api/command" in u for _, u, _ in session.calls)


def test_a_403_on_the_site_names_the_missing_permission_and_never_the_token(
    capsys: pytest.CaptureFixture[str],
) -> None:
    session = Session([("GET", APP_ID, Response(403, {"error": {"code": "AuthorizationFailed"}}))])
    with pytest.raises(MissingPermissionError) as info:
        run(target(session), req("web", "app"))
    message = str(info.value)
    assert "Microsoft.Web/sites/read" in message and "AuthorizationFailed" in message
    out = capsys.readouterr()
    assert_no_token(message, out.out, out.err)


def test_a_kudu_403_names_scm_publish_and_the_probe_file_is_still_removed() -> None:
    session = kudu_session(probe_output())
    session.routes.insert(0, ("POST", "/api/command", Response(403, "")))
    with pytest.raises(MissingPermissionError, match=r"Microsoft.Web/sites/publish/action"):
        run(target(session), req("web", "app"))
    assert session.called("DELETE", "/api/vfs/"), "the uploaded probe must be removed"


def test_an_scm_container_without_python_says_so() -> None:
    session = kudu_session(probe_output(), install="")
    with pytest.raises(HostProbeError, match="dependencies are not available on app app-web"):
        run(target(session), req("web", "app"))


def test_kudu_output_without_a_result_is_no_result_with_its_tail() -> None:
    session = kudu_session("ModuleNotFoundError: azure")
    with pytest.raises(HostProbeError, match="gave no probe result: ModuleNotFoundError"):
        run(target(session), req("web", "app"))


def test_a_transport_failure_names_the_call_only() -> None:
    def boom(method: str, url: str, kw: dict[str, Any]) -> Response:
        raise ConnectionError(f"reset while sending Authorization: Bearer {TOKEN}")

    with pytest.raises(HostProbeError) as info:
        run(target(Session([("GET", APP_ID, boom)])), req("web", "app"))
    assert "reading app app-web: no answer (ConnectionError)" in str(info.value)
    assert_no_token(str(info.value))


# ------------------------------------------------------------------ Container Apps


def container_session(statuses: list[str], log_rows: list[list[str]] | None = None) -> Session:
    status_iter = iter(statuses)
    rows = log_rows if log_rows is not None else [[line] for line in probe_output().splitlines()]

    def execution(method: str, url: str, kw: dict[str, Any]) -> Response:
        return Response(
            200, {"name": "exec-1", "properties": {"status": next(status_iter, statuses[-1])}}
        )

    return Session(
        [
            ("GET", "/executions/exec-1", execution),
            (
                "GET",
                CA_ID,
                Response(
                    200, {"location": "westeurope", "properties": {"managedEnvironmentId": ENV_ID}}
                ),
            ),
            (
                "GET",
                ENV_ID,
                Response(
                    200,
                    {
                        "properties": {
                            "appLogsConfiguration": {
                                "destination": "log-analytics",
                                "logAnalyticsConfiguration": {"customerId": "ws-123"},
                            }
                        }
                    },
                ),
            ),
            ("PUT", "/Microsoft.App/jobs/", Response(201, {})),
            ("POST", "/start", Response(202, {"name": "exec-1"})),
            (
                "GET",
                "/Microsoft.App/jobs/",
                Response(200, {"properties": {"provisioningState": "Succeeded"}}),
            ),
            ("POST", "api.loganalytics.io", Response(200, {"tables": [{"rows": rows}]})),
            ("DELETE", "/Microsoft.App/jobs/", Response(200)),
        ]
    )


def test_a_container_app_job_holds_the_apps_user_assigned_identity_only() -> None:
    session = container_session(["Running", "Succeeded"])
    t = target(session)
    clock = Clock()
    result = run(
        t,
        req(
            "jobs",
            "app",
            ("system", SHARED_CID),
            expect={"system": {"api-key": "denied"}, SHARED_CID: {"api-key": "allowed"}},
        ),
        clock,
    )
    assert result.passed
    (put,) = session.called("PUT", "/Microsoft.App/jobs/")
    body = put["json"]
    assert body["identity"] == {"type": "UserAssigned", "userAssignedIdentities": {SHARED_ID: {}}}
    config = body["properties"]["configuration"]
    assert config["triggerType"] == "Manual" and config["replicaRetryLimit"] == 0
    assert config["replicaTimeout"] == (420 + 35)
    assert body["properties"]["environmentId"] == ENV_ID
    (container,) = body["properties"]["template"]["containers"]
    assert container["env"][0]["name"] == SOURCE_ENV
    script = container["command"][2]
    spec = json.loads(base64.b64decode(script.split("--spec-b64 ")[1].split()[0]))
    # A job cannot hold the app's system identity: only the shared one is probed.
    assert spec["identities"] == [SHARED_CID]
    assert spec["expect"] == {SHARED_CID: {"api-key": "allowed"}}
    (query,) = session.called("POST", "api.loganalytics.io")
    assert (
        "ContainerAppConsoleLogs_CL" in query["json"]["query"]
        and "exec-1" in query["json"]["query"]
    )
    assert session.called("DELETE", "/Microsoft.App/jobs/")
    assert LOG_ANALYTICS_SCOPE in t.credential.scopes and ARM_SCOPE in t.credential.scopes


def test_a_container_app_job_that_never_completes_is_given_up_and_deleted() -> None:
    session = container_session(["Running"])
    clock = Clock()
    with pytest.raises(HostTimeoutError, match="execution exec-1 did not finish within 455 s"):
        run(target(session), req("jobs", "app", (SHARED_CID,)), clock)
    assert clock.now <= 455 + 10
    assert session.called("DELETE", "/Microsoft.App/jobs/")


def test_a_log_that_never_arrives_is_a_timeout_naming_the_executions_end() -> None:
    session = container_session(["Failed"], log_rows=[["pip installing..."]])
    with pytest.raises(HostTimeoutError, match=r"did not finish within 600 s.*ended Failed"):
        run(target(session), req("jobs", "app", (SHARED_CID,)), Clock())


def test_a_container_apps_system_identity_alone_is_not_probed_and_says_why() -> None:
    with pytest.raises(HostProbeError, match="cannot hold an app's system identity"):
        run(target(container_session(["Succeeded"])), req("jobs", "app"))


def test_a_403_creating_the_job_names_identity_assignment() -> None:
    session = container_session(["Succeeded"])
    session.routes.insert(
        0,
        (
            "PUT",
            "/Microsoft.App/jobs/",
            Response(403, {"error": {"code": "LinkedAuthorizationFailed"}}),
        ),
    )
    with pytest.raises(MissingPermissionError) as info:
        run(target(session), req("jobs", "app", (SHARED_CID,)), Clock())
    assert "userAssignedIdentities/assign/action" in str(info.value)
    assert "LinkedAuthorizationFailed" in str(info.value)
    assert_no_token(str(info.value))


# ------------------------------------------------------------------ AKS workloads


def kubeconfig() -> str:
    config = {
        "clusters": [
            {
                "name": "aks-demo",
                "cluster": {
                    "server": SERVER,
                    "certificate-authority-data": base64.b64encode(b"CA PEM").decode(),
                },
            }
        ],
        "users": [{"name": "u", "user": {"exec": {"command": "kubelogin"}}}],
    }
    return base64.b64encode(yaml.safe_dump(config).encode()).decode()


def aks_session(job_statuses: list[dict[str, Any]], log: str | None = None) -> Session:
    statuses = iter(job_statuses)
    ca_seen: list[str] = []

    def job(method: str, url: str, kw: dict[str, Any]) -> Response:
        ca_seen.append(open(kw["verify"]).read())  # noqa: SIM115 -- read while it exists
        return Response(200, {"status": next(statuses, job_statuses[-1])})

    session = Session(
        [
            (
                "POST",
                "/listClusterUserCredential",
                Response(200, {"kubeconfigs": [{"name": "clusterUser", "value": kubeconfig()}]}),
            ),
            ("POST", "/apis/batch/v1/namespaces/", Response(201, {})),
            ("GET", "/apis/batch/v1/namespaces/", job),
            (
                "GET",
                "/pods?labelSelector=",
                Response(200, {"items": [{"metadata": {"name": "probe-pod-1"}}]}),
            ),
            (
                "GET",
                "/pods/probe-pod-1/log",
                Response(200, log if log is not None else probe_output()),
            ),
            ("DELETE", "/apis/batch/v1/namespaces/", Response(200, {})),
        ]
    )
    session.ca_seen = ca_seen  # type: ignore[attr-defined]
    return session


def test_a_workload_probe_is_a_job_under_its_service_account_with_an_entra_cluster_token() -> None:
    session = aks_session([{"active": 1}, {"succeeded": 1}])
    t = target(session)
    result = run(t, req("api", "workload", (SHARED_CID,)), Clock())
    assert result.passed
    (create,) = session.called("POST", "/apis/batch/v1/namespaces/api/jobs")
    manifest = create["json"]
    pod = manifest["spec"]["template"]
    assert pod["spec"]["serviceAccountName"] == "api-sa"
    assert pod["metadata"]["labels"][WORKLOAD_IDENTITY_LABEL] == "true"
    assert manifest["metadata"]["namespace"] == "api"
    assert manifest["spec"]["backoffLimit"] == 0
    assert manifest["spec"]["activeDeadlineSeconds"] == 420 + 35
    assert pod["spec"]["restartPolicy"] == "Never"
    assert pod["spec"]["containers"][0]["env"][0]["name"] == SOURCE_ENV
    api_calls = [(m, u, kw) for m, u, kw in session.calls if u.startswith(SERVER)]
    assert api_calls and all(kw["verify"] != True for _, _, kw in api_calls)  # noqa: E712
    assert session.ca_seen == ["CA PEM", "CA PEM"]  # type: ignore[attr-defined]
    assert AKS_SCOPE == "6dae42f8-4368-4678-94ff-3960e28e3630/.default"
    assert t.credential.scopes.count(AKS_SCOPE) == len(api_calls)
    (delete,) = session.called("DELETE", "/jobs/")
    assert delete is not None
    assert any("propagationPolicy=Background" in u for m, u, _ in session.calls if m == "DELETE")
    (log,) = session.called("GET", "/log")
    assert log is not None


def test_a_workload_without_identity_runs_unlabelled() -> None:
    session = aks_session([{"failed": 1}])
    result = run(target(session), req("batch", "workload_without_identity"), Clock())
    assert result.passed  # a failed Job still printed the probe's verdict
    (create,) = session.called("POST", "/apis/batch/v1/namespaces/batch/jobs")
    labels = create["json"]["spec"]["template"]["metadata"]["labels"]
    assert WORKLOAD_IDENTITY_LABEL not in labels
    assert create["json"]["spec"]["template"]["spec"]["serviceAccountName"] == "default"


def test_a_kubernetes_job_that_never_completes_is_given_up_and_deleted() -> None:
    session = aks_session([{"active": 1}])
    with pytest.raises(
        HostTimeoutError, match=r"probe Job mikit-probe-.* did not finish within 455 s"
    ):
        run(target(session), req("api", "workload", (SHARED_CID,)), Clock())
    assert session.called("DELETE", "/apis/batch/v1/namespaces/api/jobs/")


def test_a_cluster_403_names_the_aks_rbac_role_and_never_the_token(
    capsys: pytest.CaptureFixture[str],
) -> None:
    session = aks_session([{"succeeded": 1}])
    session.routes.insert(
        0,
        (
            "POST",
            "/apis/batch/v1/namespaces/",
            Response(
                403, {"kind": "Status", "reason": "Forbidden", "message": "User cannot create jobs"}
            ),
        ),
    )
    with pytest.raises(MissingPermissionError) as info:
        run(target(session), req("api", "workload", (SHARED_CID,)), Clock())
    assert "Azure Kubernetes Service RBAC Writer" in str(info.value)
    assert "batch/jobs/write" in str(info.value)
    out = capsys.readouterr()
    assert_no_token(str(info.value), out.out, out.err)


def test_a_missing_cluster_user_permission_is_named() -> None:
    session = Session(
        [
            (
                "POST",
                "/listClusterUserCredential",
                Response(403, {"error": {"code": "AuthorizationFailed"}}),
            )
        ]
    )
    with pytest.raises(MissingPermissionError, match="listClusterUserCredential/action"):
        run(target(session), req("api", "workload", (SHARED_CID,)), Clock())


def test_a_pod_cannot_replay_a_stashed_token() -> None:
    with pytest.raises(HostProbeError, match="new pod"):
        run(target(aks_session([{"succeeded": 1}])), req("api", "workload", replay=True), Clock())


def test_the_target_closes_its_http_session() -> None:
    session = Session([])
    t = target(session)
    t.close()
    assert session.closed


# ------------------------------------------------------------------ the container launcher


def test_the_container_script_really_starts_the_probe_from_its_environment(tmp_path: Any) -> None:
    """The ``sh -c`` script a job or pod runs, run here with sh: it finds a python3 that
    imports the probe's dependencies, unpacks the probe from the environment variable and
    prints the probe's result between the markers."""
    import os  # noqa: PLC0415
    import subprocess  # noqa: PLC0415
    import sys  # noqa: PLC0415

    from verify.probe import parse_output  # noqa: PLC0415
    from verify.targets.azure_hosts.launcher import container_script, packed_source  # noqa: PLC0415

    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "python3").write_text(f'#!/bin/sh\nexec {sys.executable} "$@"\n')
    (bin_dir / "python3").chmod(0o755)
    spec = {
        "vault_url": "https://kv-demo.vault.azure.net/",
        "secrets": ["a"],
        "identities": ["system"],
        "budget_seconds": 3,
    }
    done = subprocess.run(
        ["/bin/sh", "-c", container_script(spec, venv=str(tmp_path / "venv"))],
        env={
            "PATH": f"{bin_dir}:/usr/bin:/bin",
            SOURCE_ENV: packed_source(),
            "HOME": str(tmp_path),
            # No identity endpoint answers here: the probe reports that, between markers.
            "AZURE_POD_IDENTITY_AUTHORITY_HOST": "http://127.0.0.1:9",
        },
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    result = parse_output(done.stdout)
    assert result["vault_url"] == "https://kv-demo.vault.azure.net/", done.stderr
    assert not (tmp_path / "venv").exists()  # the host's python3 had the imports
    assert TOKEN not in done.stdout + done.stderr
    assert os.environ.get(SOURCE_ENV) is None


# ------------------------------------------------------------------ the e2e tests of these paths


@pytest.mark.xdist_group("e2e-collection")  # one worker: one cached collection
def test_the_host_e2e_tests_are_deselected_by_default_and_each_has_a_timeout() -> None:
    """tests/verify/test_e2e_azure_hosts.py stays out of a plain pytest (the ``e2e``
    marker), asks Azure for nothing when imported, and bounds its one test."""
    import importlib.util  # noqa: PLC0415
    from pathlib import Path  # noqa: PLC0415

    from test_e2e_selection import collected_e2e_files  # noqa: PLC0415

    path = Path(__file__).with_name("test_e2e_azure_hosts.py")
    # Collected with test_e2e_azure.py, once: a plain pytest collects none of the two
    # modules' tests and deselects as many as -m e2e selects, these 7 among them.
    ids, _ = collected_e2e_files()
    mine = [i for i in ids if i.startswith("tests/verify/test_e2e_azure_hosts.py::")]
    assert len(mine) == 7
    assert all("::test_the_probe_runs_inside_a_host_of_each_kind[" in i for i in mine)
    spec = importlib.util.spec_from_file_location("e2e_hosts_copy", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)  # importing asks no credential (the fixture does)
    marks = {m.name: m for m in module.test_the_probe_runs_inside_a_host_of_each_kind.pytestmark}
    assert marks["timeout"].args[0] > 180
    assert {kind for kind, _ in module.KINDS} == set(azure_hosts.HOST_PATHS)
    assert {app for _, app in module.KINDS if app} == set(azure_hosts.APP_PATHS)


def test_one_probe_call_fans_out_to_each_hosts_own_path() -> None:
    """A VM, a web app, a container app and a workload in one ``probe`` call: each request
    goes to its host kind's path and each outcome comes back under its host."""

    class VirtualMachines:
        def __init__(self) -> None:
            self.names: list[str] = []

        def begin_run_command(self, rg: str, name: str, parameters: Any, **kw: Any) -> Poller:
            self.names.append(name)
            status = InstanceViewStatus(code="ok", message=probe_output())
            return Poller(RunCommandResult(value=[status]))

    vms = VirtualMachines()
    compute = Compute(ScaleSetVMs({"0": probe_output(passed=False)}))
    compute.virtual_machines = vms  # type: ignore[attr-defined]
    kudu = kudu_session(probe_output())
    jobs = container_session(["Succeeded"])
    aks = aks_session([{"succeeded": 1}])
    session = Session([*kudu.routes, *jobs.routes, *aks.routes])
    t = target(session, compute=compute)
    outcomes = t.probe(
        [
            req("web", "vm"),
            req("web", "app"),
            req("jobs", "app", (SHARED_CID,)),
            req("api", "workload", (SHARED_CID,)),
            req("fleet", "scaleset"),
        ]
    )
    assert vms.names == ["vm-web"]
    assert all(not isinstance(o, BaseException) for o in outcomes.values()), outcomes
    assert set(outcomes) == {"web", "jobs", "api", "fleet"}  # "web" twice: one key per host
    assert outcomes["fleet"].passed is False  # type: ignore[union-attr]
    assert session.called("POST", "/api/command") and session.called("POST", "/start")
    assert session.called("POST", "/apis/batch/v1/namespaces/api/jobs")


def test_docs_list_every_permission_each_path_declares() -> None:
    """docs/verify.md's real-Azure table names each path's RBAC actions in full, so the
    documented permissions cannot drift from what the code calls."""
    from pathlib import Path  # noqa: PLC0415

    docs = (Path(__file__).resolve().parents[2] / "docs" / "verify.md").read_text()
    table = docs[docs.index("### Probing each kind of host") :]
    for kind, path in {**azure_hosts.HOST_PATHS, **azure_hosts.APP_PATHS}.items():
        for action in path.permissions:
            assert f"`{action}`" in table, (kind, action)


def test_job_names_are_valid_and_unique_per_run() -> None:
    import re  # noqa: PLC0415

    from verify.targets.azure_hosts.container_app import job_name  # noqa: PLC0415

    request = req("jobs", "app", (SHARED_CID,))
    names = {job_name("ca-jobs", request) for _ in range(5)}
    assert len(names) == 5
    assert all(re.fullmatch(r"[a-z][a-z0-9-]{0,30}[a-z0-9]", n) for n in names), names


def test_a_vm_run_command_403_names_the_permission_and_never_the_token() -> None:
    class Refusing:
        def begin_run_command(self, *args: Any, **kwargs: Any) -> Any:
            error = HttpResponseError(message=f"AuthorizationFailed for Bearer {TOKEN}")
            error.status_code = 403
            raise error

    compute = Compute(ScaleSetVMs({}))
    compute.virtual_machines = Refusing()  # type: ignore[attr-defined]
    outcome = target(compute=compute).probe([req("web", "vm")])["web"]
    assert isinstance(outcome, MissingPermissionError)
    assert "Microsoft.Compute/virtualMachines/runCommand/action" in str(outcome)
    assert "Virtual Machine Contributor" in str(outcome)
    assert_no_token(str(outcome))
