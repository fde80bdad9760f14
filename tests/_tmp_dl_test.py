import threading
from tests.test_store import row
from watcher.store import Store

def test_opposite_order(pg_url):
    stores = [Store(pg_url), Store(pg_url)]
    errors = []
    bar = threading.Barrier(2)
    def w(n):
        try:
            for b in range(30):
                keys = [f"k{b}-{i}" for i in range(100)]
                if n: keys.reverse()
                bar.wait()
                stores[n].append([row(k) for k in keys])
        except BaseException as e:
            errors.append(e)
    ts=[threading.Thread(target=w,args=(n,)) for n in (0,1)]
    [t.start() for t in ts]; [t.join() for t in ts]
    assert not errors, [str(e)[:300] for e in errors]
