from tests.test_api import *  # noqa

async def test_race(start):
    api = await start(engine_tick="0.005s")
    s = datetime.now(UTC).replace(microsecond=0) - timedelta(seconds=5)
    await api.post("/api/v1/events", [probe("https://vpn.acme.example/", s), probe("203.0.113.10:443", s)])
    async def opened():
        return (await api.get("/api/v1/tickets?status=open"))[1]["tickets"]
    (tk,) = await api.wait_for(opened, "open")
    bad = []
    async def noise():
        for i in range(300):
            await api.post("/api/v1/events", [event(host=f"n{i}")])
    async def acks():
        for i in range(300):
            st, b = await api.post(f"/api/v1/tickets/{tk['id']}/ack", {})
            if st != 200: bad.append((i, st, b))
    await asyncio.gather(noise(), noise(), acks())
    assert not bad, bad[:5]
