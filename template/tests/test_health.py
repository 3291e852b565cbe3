from fastapi.testclient import TestClient


def test_liveness(client: TestClient) -> None:
    assert client.get("/health/live").json() == {"status": "ok", "checks": {}}


def test_readiness_checks_database_and_broker(client: TestClient) -> None:
    response = client.get("/health")
    assert response.status_code == 200, response.text
    assert response.json() == {"status": "ok", "checks": {"database": "ok", "broker": "ok"}}
