"""Drives srmlab's kernel with Jupyter's own client (jupyter_client) and
prints one JSON line per check: {"check": name, "ok": bool, "detail": str}.

kernel_test.go runs it with JUPYTER_PATH pointing at a kernelspec for the
test binary and reads the lines back as subtests.
"""
import json
import os
import signal
import sys
import time

from jupyter_client.manager import KernelManager
from jupyter_client.session import Session

KERNEL = sys.argv[1]
WORK = sys.argv[2]
LOG = os.path.join(WORK, "kernel.log")


def report(check, ok, detail=""):
    print(json.dumps({"check": check, "ok": bool(ok), "detail": str(detail)}), flush=True)


def run(kc, code, timeout=60):
    """Executes code and returns (reply content, [iopub messages])."""
    msg_id = kc.execute(code)
    outputs = []
    deadline = time.time() + timeout
    reply = None
    idle = False
    while not (reply and idle):
        left = deadline - time.time()
        if left <= 0:
            raise TimeoutError("no reply to %r" % code)
        if reply is None:
            try:
                m = kc.get_shell_msg(timeout=0.05)
                if m["parent_header"].get("msg_id") == msg_id:
                    reply = m["content"]
            except Exception:
                pass
        try:
            m = kc.get_iopub_msg(timeout=0.05)
        except Exception:
            continue
        if m["parent_header"].get("msg_id") != msg_id:
            continue
        t = m["msg_type"]
        if t == "status":
            idle = m["content"]["execution_state"] == "idle"
        elif t != "execute_input":
            outputs.append(m)
    return reply, outputs


def kinds(outputs):
    return [(m["msg_type"], m["content"].get("name")) for m in outputs]


def text_of(outputs, name):
    return "".join(m["content"]["text"] for m in outputs if m["msg_type"] == "stream" and m["content"]["name"] == name)


def result_of(outputs):
    for m in outputs:
        if m["msg_type"] == "execute_result":
            return m["content"]["data"]
    return {}


def check(name, fn):
    try:
        ok, detail = fn()
    except Exception as e:  # a crash is a failed check, not a lost run
        ok, detail = False, "%s: %s" % (type(e).__name__, e)
    report(name, ok, detail)


def main():
    log = open(LOG, "w")
    km = KernelManager(kernel_name=KERNEL)
    km.start_kernel(stderr=log)
    kc = km.client()
    kc.start_channels()
    kc.wait_for_ready(timeout=60)

    def kernel_info():
        kc.kernel_info()
        m = kc.get_shell_msg(timeout=10)
        c = m["content"]
        return (c["protocol_version"] == "5.3" and c["language_info"]["name"] == "go"
                and m["header"]["msg_type"] == "kernel_info_reply"), c["language_info"]
    check("kernel_info", kernel_info)

    def heartbeat():
        time.sleep(1.5)
        return kc.hb_channel.is_beating(), "hb channel beating"
    check("heartbeat", heartbeat)

    def execute():
        r1, _ = run(kc, "x := 40 + 2")
        r2, out = run(kc, "x")
        data = result_of(out)
        ok = r1["status"] == "ok" and r2["status"] == "ok" and data.get("text/plain") == "42"
        ok = ok and r2["execution_count"] == r1["execution_count"] + 1
        return ok, (r1, r2, data)
    check("execute", execute)

    def stream_order():
        code = "\n".join([
            'import (\n\t"fmt"\n\t"os"\n)',
            'fmt.Println("a")',
            'os.Stdout.WriteString("b\\n")',  # compiled code writing to fd 1
            'fmt.Fprintln(os.Stderr, "c")',
            'display.Display(display.Markdown("d"))',
            'fmt.Println("e")',
        ])
        r, out = run(kc, code)
        seq = []
        for m in out:
            if m["msg_type"] == "stream":
                seq.extend((m["content"]["name"], l) for l in m["content"]["text"].splitlines())
            elif m["msg_type"] == "display_data":
                seq.append(("display", m["content"]["data"].get("text/markdown")))
        stdout = [x for x in seq if x[0] != "stderr"]
        ok = r["status"] == "ok" and stdout == [("stdout", "a"), ("stdout", "b"), ("display", "d"), ("stdout", "e")]
        ok = ok and ("stderr", "c") in seq
        return ok, seq
    check("stream_order", stream_order)

    def display_rich():
        r1, o1 = run(kc, 'display.HTML("<b>hi</b>")')
        r2, o2 = run(kc, 'import "image"\nimage.NewRGBA(image.Rect(0, 0, 8, 4))')
        r3, o3 = run(kc, 'import "gonum.org/v1/plot"\np := plot.New()\np.Title.Text = "empty"\np')
        html = result_of(o1).get("text/html")
        png = result_of(o2).get("image/png", "")
        plotpng = result_of(o3).get("image/png", "")
        ok = html == "<b>hi</b>" and png.startswith("iVBOR") and plotpng.startswith("iVBOR")
        return ok, (html, png[:10], plotpng[:10], r1["status"], r2["status"], r3["status"])
    check("display_rich", display_rich)

    def display_update():
        r, out = run(kc, 'h := display.NewHandle()\nh.Show(display.Text("one"))\nh.Show(display.Text("two"))')
        seq = [(m["msg_type"], m["content"].get("transient", {}).get("display_id"), m["content"]["data"].get("text/plain"))
               for m in out if m["msg_type"] in ("display_data", "update_display_data")]
        ok = (r["status"] == "ok" and len(seq) == 2 and seq[0][0] == "display_data" and seq[1][0] == "update_display_data"
              and seq[0][1] and seq[0][1] == seq[1][1] and seq[1][2] == "two")
        return ok, seq
    check("display_update", display_update)

    def complete():
        run(kc, 'import "github.com/srmlab/srmlab/srm"\nimport "bytes"\nbuf := new(bytes.Buffer)')
        got = {}
        for code in ["fmt.Prin", "srm.NewMo", "buf.WriteStr", "xx := x"]:
            kc.complete(code, len(code))
            got[code] = kc.get_shell_msg(timeout=10)["content"]
        ok = ("Println" in got["fmt.Prin"]["matches"] and "NewModel" in got["srm.NewMo"]["matches"]
              and "WriteString" in got["buf.WriteStr"]["matches"] and "x" in got["xx := x"]["matches"]
              and got["fmt.Prin"]["cursor_start"] == 4 and got["fmt.Prin"]["cursor_end"] == 8)
        return ok, {k: (v["matches"][:5], v["cursor_start"]) for k, v in got.items()}
    check("complete", complete)

    def inspect():
        code = "srm.NewModel"
        kc.inspect(code, 6)
        c = kc.get_shell_msg(timeout=10)["content"]
        text = c.get("data", {}).get("text/plain", "")
        return c["found"] and "func NewModel(" in text and "\n\n" in text, text[:200]
    check("inspect", inspect)

    def is_complete():
        res = {}
        for code in ["for i := 0; i < 3; i++ {", "x := 1", "y := `raw"]:
            kc.is_complete(code)
            res[code] = kc.get_shell_msg(timeout=10)["content"]["status"]
        return res == {"for i := 0; i < 3; i++ {": "incomplete", "x := 1": "complete", "y := `raw": "incomplete"}, res
    check("is_complete", is_complete)

    def comm_and_history():
        kc.comm_info()
        c = kc.get_shell_msg(timeout=10)["content"]
        kc.history()
        h = kc.get_shell_msg(timeout=10)["content"]
        return c["status"] == "ok" and c["comms"] == {} and h["status"] == "ok", (c, h)
    check("comm_info_history", comm_and_history)

    def panicking_cell():
        r, out = run(kc, "var empty []int\n_ = empty[5]")
        errs = [m["content"] for m in out if m["msg_type"] == "error"]
        r2, out2 = run(kc, "x")
        ok = (r["status"] == "error" and r["ename"] == "panic" and "index out of range" in r["evalue"]
              and errs and result_of(out2).get("text/plain") == "42")
        return ok, (r.get("ename"), r.get("evalue"), r.get("traceback"))
    check("panic", panicking_cell)

    def compile_error():
        r, _ = run(kc, 'y := 1\nfmt.Println(notDefined)')
        return r["status"] == "error" and "cell:2:" in r["evalue"] and "notDefined" in r["evalue"], r["evalue"]
    check("compile_error", compile_error)

    def interrupt(how):
        def f():
            results = []
            for code in ["n := 0\nfor { n++ }", "<-ctx.Done()\nfmt.Println(\"ctx cancelled:\", ctx.Err())"]:
                msg_id = kc.execute(code)
                time.sleep(1.0)
                t0 = time.time()
                if how == "message":
                    km.interrupt_kernel()
                else:
                    km.signal_kernel(signal.SIGINT)
                reply = None
                while reply is None:
                    m = kc.get_shell_msg(timeout=20)
                    if m["parent_header"].get("msg_id") == msg_id:
                        reply = m["content"]
                results.append((reply["status"], reply.get("ename"), round(time.time() - t0, 2)))
                # Drain this cell's output.
                while True:
                    try:
                        m = kc.get_iopub_msg(timeout=0.5)
                    except Exception:
                        break
            r, out = run(kc, "x")
            ok = all(s == "error" and e == "Interrupted" and dt < 10 for s, e, dt in results)
            ok = ok and result_of(out).get("text/plain") == "42" and km.is_alive()
            return ok, results
        return f
    check("interrupt_message", interrupt("message"))
    check("interrupt_sigint", interrupt("signal"))

    def forged():
        target = os.path.join(WORK, "forged-was-run")
        code = 'import "os"\nos.WriteFile(%s, []byte("pwned"), 0o644)' % json.dumps(target)
        bad = Session(key=b"not-the-key", username="mallory")
        bad.send(kc.shell_channel.socket, "execute_request",
                 content={"code": code, "silent": False, "store_history": True,
                          "user_expressions": {}, "allow_stdin": False, "stop_on_error": True})
        unsigned = Session(key=b"", username="mallory")
        unsigned.send(kc.shell_channel.socket, "execute_request",
                      content={"code": code, "silent": False, "store_history": True,
                               "user_expressions": {}, "allow_stdin": False, "stop_on_error": True})
        time.sleep(1.0)
        # Shell requests are served in order: once this one is answered,
        # the forged ones have been dealt with.
        r, out = run(kc, "x")
        log.flush()
        logged = open(LOG).read()
        ok = (not os.path.exists(target) and result_of(out).get("text/plain") == "42"
              and logged.count("bad signature") >= 2)
        return ok, "file exists: %s; log: %s" % (os.path.exists(target), logged[-400:])
    check("forged_message", forged)

    def restart():
        km.restart_kernel(now=False)
        kc.wait_for_ready(timeout=60)
        r, out = run(kc, "x")
        r2, out2 = run(kc, "1 + 1")
        ok = r["status"] == "error" and result_of(out2).get("text/plain") == "2"
        return ok, (r.get("evalue"), result_of(out2))
    check("restart", restart)

    def shutdown():
        kc.stop_channels()
        t0 = time.time()
        km.shutdown_kernel(now=False)
        return not km.is_alive() and time.time() - t0 < 5, "shutdown took %.2fs" % (time.time() - t0)
    check("shutdown", shutdown)


if __name__ == "__main__":
    main()
