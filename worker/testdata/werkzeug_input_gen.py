# Generates werkzeug_input.jsonl: random structured-prediction requests (Content-Type
# and body) with the answer DRUM's _fetch_data_from_request gives for them under
# Werkzeug 2.2.2, the version of DRUM's recordings (Debian 12: apt-get install
# python3-werkzeug). One deliberate difference, the spec's rule (and Werkzeug 3's): a
# multipart/form-data body without a usable boundary stays a raw payload.
#
#   /usr/bin/python3 werkzeug_input_gen.py 300 42 > werkzeug_input.jsonl
#   (add --big for parts larger than Werkzeug's 64 KiB read chunks)
import base64, io, json, os, random, sys
import werkzeug
from werkzeug.wrappers import Request
from werkzeug.http import parse_options_header

SAMPLES = "Samples should be provided as:   - a csv or mtx under `X` form-data param key.  - binary data"

def drum(ct, body):
    env = {"REQUEST_METHOD": "POST", "wsgi.input": io.BytesIO(body), "CONTENT_LENGTH": str(len(body)),
           "SERVER_NAME": "x", "SERVER_PORT": "80", "wsgi.url_scheme": "http", "PATH_INFO": "/predict/"}
    if ct is not None:
        env["CONTENT_TYPE"] = ct
    req = Request(env)
    try:
        try:
            fs = req.files.get("X")
            charset = None
            if fs is not None:
                data = fs.stream.read()
                mimetype = {".mtx": "text/mtx"}.get(os.path.splitext(fs.filename)[1])
            elif len(req.get_data(parse_form_data=True)):
                data = req.get_data()
                mimetype, params = parse_options_header(req.content_type)
                charset = params.get("charset")
            else:
                raise ValueError(SAMPLES)
            cols = None
            cf = req.files.get("X.colnames")
            if cf is not None:
                cd = cf.stream.read()
                if cd:
                    cols = [c.strip().decode("utf-8") for c in cd.splitlines()]
        except ValueError as e:
            return {"status": 422, "msg": "ERROR: " + str(e)}
    except Exception as e:
        return {"status": 500, "msg": "ERROR: {}".format(e)}
    return {"status": 200, "payload": base64.b64encode(data).decode(), "mime": mimetype or "",
            "charset": charset or "", "cols": cols}

R = random.Random(int(sys.argv[2]) if len(sys.argv) > 2 else 1)
BIG = False
def pick(*xs): return R.choice(xs)
LB = ["\r\n", "\n", "\r"]
def rstr(alpha, n):
    return "".join(R.choice(alpha) for _ in range(R.randint(0, n)))
WEIRD = "abcXY.;,=\"'\\*% \t-/_0123\xe9\x85\xa0\u2028\u00c9\u0130"

def param():
    k = pick("name", "filename", "charset", "boundary", "Name", "FILENAME", "filename*", "name*", "x", "charset*", rstr(WEIRD, 6))
    sep = pick("=", "=", " = ", "", "*0=", "*1=", "*=")
    v = pick('"X"', "X", '"X.colnames"', "X.colnames", '"data.mtx"', "data.mtx", "a.csv", '"a\\"b.mtx"', "utf-8''x.mtx", "UTF-8''X",
             "klingon''x", "utf-8''%FF", "latin-1''%E9.mtx", '""', '"', "base64", "utf-8", "idna", "undefined", rstr(WEIRD, 8), "..mtx", "/a/.mtx", "d.MTX")
    return pick(";", "; ", ";\t", " ;", ";,", "\n;") + k + sep + v

def ctype():
    base = pick("multipart/form-data", "Multipart/Form-Data", "text/csv", "text/plain", "text/mtx", "application/json",
                "application/x-www-form-urlencoded", "", "Text/CSV", "text/csv ", " text/csv", rstr(WEIRD, 10), ",text/csv", ";")
    ps = "".join(param() for _ in range(R.randint(0, 3)))
    if "multipart" in base.lower() and R.random() < 0.8:
        ps = pick("; boundary=bnd", ";boundary=\"bnd\"", "; boundary=b-nd'x", "; boundary=", "; boundary", "; boundary=\xe9") + ps
    return base + ps

def part_headers(lb):
    hs = []
    if R.random() < 0.93:
        cd = pick("Content-Disposition", "content-disposition", "CONTENT-DISPOSITION", " Content-Disposition", "Content-Disposition ")
        hs.append(cd + ":" + pick(" ", "", "  ") + pick("form-data", "attachment", "") + "".join(param() for _ in range(R.randint(0, 3))))
    if R.random() < 0.4:
        hs.append("Content-Type: " + pick("text/plain", "text/plain; charset=" + pick("utf-8", "klingon", "base64", "idna", '""', "latin 1", "UTF8"), "text/plain; charset", "application/octet-stream"))
    if R.random() < 0.1:
        hs.append(pick("bogus", "X-A: b" + lb + " continued", "X-\xff: y", ": nothing"))
    R.shuffle(hs)
    return lb.join(hs)

def mp_body(b="bnd"):
    lb = pick(*LB) if R.random() < 0.4 else "\r\n"
    out = ""
    if R.random() < 0.2: out += rstr("ab\r\n-", 6)
    n = R.randint(0, 4)
    for i in range(n):
        pre = "" if (i == 0 and R.random() < 0.5) else lb
        out += pre + "--" + b + pick("", " ", "\t") + lb + part_headers(lb) + lb + lb
        if BIG and R.random() < 0.15:
            out += ("y" * R.randint(60000, 70000)) + pick("\r", "\n", "\r\n", "", "\r\n--bn")
        out += pick("a,b\n1,2\n", "", "%%MatrixMarket\n1 1 1\n", "x\r\n--bnd-not", "col1\n col2 \r\ncol3", "a\xe9\n", "\xff\xfe", "-- bnd", rstr("ab,\n\r-", 12))
    if n == 0 or R.random() < 0.8:
        out += lb + "--" + b + pick("--", "--", "-- ", "") + pick(lb, "", lb + "epilogue")
    raw = out.encode("utf-8", "surrogateescape") if False else out.encode("latin-1", "replace") if R.random() < 0.3 else out.encode("utf-8")
    if R.random() < 0.1 and raw:
        i = R.randrange(len(raw)); raw = raw[:i] + bytes([R.randrange(256)]) + raw[i+1:]
    if R.random() < 0.1 and raw:
        raw = raw[:R.randrange(len(raw))]
    return raw

n = int(sys.argv[1])
BIG = "--big" in sys.argv
for i in range(n):
    ct = ctype() if R.random() < 0.95 else None
    if ct is not None and "multipart" in ct.lower():
        body = mp_body()
    else:
        body = pick(b"", b"a,b\n1,2\n", b"X=1&b=2", mp_body())
    ctw = ct
    # spec rule: multipart without a usable boundary keeps the raw body (werkzeug 3)
    exp = None
    if ct:
        try:
            mt, params = parse_options_header(ct)
            if mt.lower() == "multipart/form-data":
                b = params.get("boundary", "")
                ok = False
                try:
                    ok = bool(b) and bool(b.encode("ascii"))
                except Exception:
                    ok = False
                if not ok:
                    if len(body):
                        exp = {"status": 200, "payload": base64.b64encode(body).decode(), "mime": mt, "charset": params.get("charset") or "", "cols": None}
                    else:
                        exp = {"status": 422, "msg": "ERROR: " + SAMPLES}
        except Exception:
            pass
    if exp is None:
        exp = drum(ct, body)
    print(json.dumps({"ct": ct, "ct_latin1": ct is not None and all(ord(c) < 256 for c in ct), "body": base64.b64encode(body).decode(), "want": exp}))
