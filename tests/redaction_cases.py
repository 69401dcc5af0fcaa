"""The secrets the redactor must remove and the look-alikes it must leave alone, shared by the tests.

Each secret is (name, text that contains it, the secret itself, text around it that must remain).
All values are made up; none is a real credential.
"""

from __future__ import annotations

ANTHROPIC_KEY = "sk-ant-api03-" + "Xy7_kQ2-pL9" * 8 + "AA"
ANTHROPIC_ADMIN_KEY = "sk-ant-admin01-" + "Zq4mN8rT2v" * 8
OPENAI_PROJECT_KEY = "sk-proj-" + "Ab3dEf6hIj9k" * 5
OPENAI_LEGACY_KEY = "sk-" + "T3BlbkFJ" * 6
JWT = (
    "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9."
    "eyJpc3MiOiJzdXBhYmFzZSIsInJvbGUiOiJzZXJ2aWNlX3JvbGUiLCJpYXQiOjE3MDAwMDAwMDB9."
    "s1gN4tur3_abc-DEF123xyz"
)
PEM_BODY = "MIIEowIBAAKCAQEA7bq98t1cXw0cJ2vPzG5Q"
PEM = f"-----BEGIN RSA PRIVATE KEY-----\n{PEM_BODY}\nq2c+vyXqH0p1kJm4ZyLqVb8s0N3eQ1w==\n-----END RSA PRIVATE KEY-----"
CUT_PEM_BODY = "MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQC7"
AWS_ID = "AKIAIOSFODNN7EXAMPLE"
AWS_SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
SLACK_HOOK_SECRET = "B07QWERTY12/aBcDeFgHiJkLmNoPqRsTuVwX"
DISCORD_HOOK_SECRET = "1187654321098765432/Zx9_Yw8-Vu7Ts6Rq5Po4Nm3Lk2Ji1Hg0FeDcBa"

SECRETS: list[tuple[str, str, str, str]] = [
    ("anthropic api key", f"auth failed for key {ANTHROPIC_KEY} today", ANTHROPIC_KEY, "auth failed for key"),
    ("anthropic admin key", f"admin={ANTHROPIC_ADMIN_KEY}", ANTHROPIC_ADMIN_KEY, "admin="),
    ("openai project key", f"using {OPENAI_PROJECT_KEY}.", OPENAI_PROJECT_KEY, "using "),
    ("openai legacy key", f"key '{OPENAI_LEGACY_KEY}' rejected", OPENAI_LEGACY_KEY, "rejected"),
    ("bearer token", "GET /v1 with Bearer abcDEF123.456-ghi_jkl~", "abcDEF123.456-ghi_jkl~", "Bearer "),
    ("basic auth", "sent Basic dXNlcjpodW50ZXIy to proxy", "dXNlcjpodW50ZXIy", "sent Basic "),
    ("authorization header", "Authorization: Bearer tok_9f8e7d6c5b4a", "tok_9f8e7d6c5b4a", "Authorization: "),
    ("jwt / supabase anon or service_role key", f"apikey header {JWT} sent", JWT, "header"),
    ("supabase secret key", "SUPABASE sb_secret_N7UND0UgjKTVK-Uodkm0Hg_xSvEMPvz", "sb_secret_N7UND0UgjKTVK",
     "SUPABASE "),
    ("supabase publishable key", "client sb_publishable_ZaZ2Yy1Xx0Ww9Vv8", "sb_publishable_ZaZ2Yy1Xx0Ww9Vv8", "client"),
    ("aws access key id", f"creds {AWS_ID} loaded", AWS_ID, "loaded"),
    ("aws session key id", "ASIAY34FZKBOKMUTVV7A expired", "ASIAY34FZKBOKMUTVV7A", "expired"),
    ("aws secret key by label", f"aws_secret_access_key={AWS_SECRET}", AWS_SECRET, "aws_secret_access_key="),
    ("aws secret key with spaced label", f"AWS Secret Access Key: {AWS_SECRET}", "wJalrXUtnFEMI",
     "AWS Secret Access Key:"),
    ("aws secret key after its key id", f"using {AWS_ID} {AWS_SECRET} for s3", AWS_SECRET, "for s3"),
    ("aws secret key after key id and colon", f"{AWS_ID}:{AWS_SECRET}", AWS_SECRET, ":"),
    ("aws secret key under SecretAccessKey", f'{{"AccessKeyId": "ASIAY34FZKBOKMUTVV7A", "SecretAccessKey": '
     f'"{AWS_SECRET}"}}', AWS_SECRET, '"SecretAccessKey": "'),
    ("aws secret key after 'secret key:'", f"secret key: {AWS_SECRET}", AWS_SECRET, "secret key:"),
    ("postgres url password", "connect postgresql://postgres.abcd:S3cr3t!pw@aws-0-eu.pooler.supabase.com:5432/postgres",
     "S3cr3t!pw", "postgresql://postgres.abcd:"),
    ("url password containing @", "redis://app:p@ss@cache.internal:6379/0", "p@ss", "@cache.internal:6379/0"),
    ("url password containing /", "postgresql+psycopg://svc:Ab/Cd9xyz@db.internal:5432/app", "Ab/Cd9xyz",
     "@db.internal:5432/app"),
    ("url password containing a space", "postgresql://svc:Open Sesame42@db.internal/app", "Open Sesame42",
     "@db.internal/app"),
    ("url password containing a quote", "postgresql://svc:qu\"ote'd77@db.internal/app", "qu\"ote'd77",
     "@db.internal/app"),
    ("github classic token", "token ghp_" + "a1B2c3D4e5" * 4, "ghp_a1B2c3D4e5", "token"),
    ("github oauth token", "gho_" + "Z9y8X7w6V5" * 4 + " used", "gho_Z9y8X7w6V5", " used"),
    ("github fine-grained token", "github_pat_11ABCDEFG0abcdefghijkl_MNOPqrstuvWXYZ0123456789", "github_pat_11ABCDEFG0",
     ""),
    ("slack bot token", "slack xoxb-2048-1111-AbCdEfGhIjKl posted", "xoxb-2048-1111-AbCdEfGhIjKl", "posted"),
    ("slack webhook url", f"POST https://hooks.slack.com/services/T01ABCDEF/{SLACK_HOOK_SECRET} failed",
     SLACK_HOOK_SECRET, "hooks.slack.com/services/"),
    ("discord webhook url", f"https://discord.com/api/webhooks/{DISCORD_HOOK_SECRET} returned 404",
     DISCORD_HOOK_SECRET, "returned 404"),
    ("discordapp webhook url with version", f"https://discordapp.com/api/v10/webhooks/{DISCORD_HOOK_SECRET}?wait=true",
     DISCORD_HOOK_SECRET, "discordapp.com/api/v10/webhooks/"),
    ("google api key", "maps AIzaSyA1b2C3d4E5f6G7h8I9j0K1l2M3n4O5p6Q ok", "AIzaSyA1b2C3d4E5f6G7h8I9j0K1l2M3n4O5p6Q",
     " ok"),
    ("api key in a query string", "GET https://maps.example.com/api/geo?key=Zq81mV0-pQ7&q=paris", "Zq81mV0-pQ7",
     "&q=paris"),
    ("azure sas signature", "https://acct.blob.core.windows.net/c/b.txt?sv=2022-11-02&sr=b&sig=Yk3R%2Fq9vT%3D&se=2026",
     "Yk3R%2Fq9vT%3D", "&se=2026"),
    ("azure storage account key", "DefaultEndpointsProtocol=https;AccountName=acct;AccountKey=Zm9vYmFyYmF6cXV4LTEyMw==;"
     "EndpointSuffix=core.windows.net", "Zm9vYmFyYmF6cXV4LTEyMw==", "EndpointSuffix="),
    ("azure service bus shared access key", "Endpoint=sb://ns.servicebus.windows.net/;SharedAccessKeyName=Root;"
     "SharedAccessKey=qW9+eR8/tY7uI6oP5=;", "qW9+eR8/tY7uI6oP5=", "SharedAccessKeyName=Root"),
    ("s3 presigned signature", "GET /b/k?X-Amz-Date=20261201T000000Z&X-Amz-Signature=9e107d9d372bb6826bd81d3542a419d6",
     "9e107d9d372bb6826bd81d3542a419d6", "X-Amz-Date="),
    ("hugging face token", "HF login with hf_aBcDeFgHiJkLmNoPqRsTuVwXyZ0123456789 ok",
     "hf_aBcDeFgHiJkLmNoPqRsTuVwXyZ0123456789", " ok"),
    ("stripe live secret", "charge via sk_live_51HxYzAbCdEfGhIjKl", "sk_live_51HxYzAbCdEfGhIjKl", "charge via"),
    ("stripe restricted key", "rk_live_51HxYzAbCdEfGhIjKlMn", "rk_live_51HxYzAbCdEfGhIjKlMn", ""),
    ("pem private key", f"loaded {PEM} from disk", PEM_BODY, "from disk"),
    ("pem private key without its END line", f"key file: -----BEGIN PRIVATE KEY-----\n{CUT_PEM_BODY}\nVJTUt9Us8cKj",
     CUT_PEM_BODY, "key file:"),
    ("escaped pem in a repr, cut", f"value '-----BEGIN OPENSSH PRIVATE KEY-----\\n{CUT_PEM_BODY}' ends",
     CUT_PEM_BODY, "' ends"),
    ("password assignment", "login password=hunter2xy user=bob", "hunter2xy", "user=bob"),
    ("json password", '{"user": "bob", "password": "hunter2xy"}', "hunter2xy", '"user": "bob"'),
    ("password in escaped json", 'body "{\\"user\\": \\"bob\\", \\"password\\": \\"Hunter 2 Go\\"}"', "Hunter 2 Go",
     '\\"user\\": \\"bob\\"'),
    ("url-encoded password", "grant_type=password&username=bob&password%3DpA55w0rdz%26scope%3Dall", "pA55w0rdz",
     "%26scope%3Dall"),
    ("url-encoded json password", "data=%7B%22password%22%3A%22pA55w0rdz%22%7D", "pA55w0rdz", "data=%7B"),
    ("compound label", "db_password: Tr0ub4dor&3", "Tr0ub4dor", "db_password:"),
    ("client secret label", "oauth client_secret=GOCSPX-f4k3S3cr3tV4lu3 refused", "GOCSPX-f4k3S3cr3tV4lu3", "refused"),
    ("camel-case session token", "{'sessionToken': 'a9b8c7d6'}", "a9b8c7d6", "sessionToken"),
    ("session cookie", "Cookie sent: session=Qm9vbS1zZXNzaW9uLTEy; theme=dark", "Qm9vbS1zZXNzaW9uLTEy", "theme=dark"),
    ("sessionid cookie", "Set-Cookie: sessionid=8f2a9c4b1d7e; Path=/; HttpOnly", "8f2a9c4b1d7e", "HttpOnly"),
]

# Ordinary text that resembles a secret and must come out unchanged.
LOOK_ALIKES: list[str] = [
    "task-ant finished; the skeleton crew left",
    "Bearer of bad news",
    "basic configuration is fine",
    "Basic plan costs $20 a month",
    "request 123e4567-e89b-12d3-a456-426614174000 done",
    "uuid 550e8400-e29b-41d4-a716-446655440000 and uuid7 0192d3e4-5f6a-7b8c-9d0e-1f2a3b4c5d6e",
    "request_id req_011CSHoEeqs5C35K2UUqR7Fy from the API",
    "trace 4bf92f3577b34da6a3ce929d0e0e4736 span 00f067aa0ba902b7",
    "fingerprint d41d8cd98f00b204e9800998ecf8427e (md5 of nothing)",
    "commit 9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
    "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
    "git 2f4b08e and 9f86d081884c7d659a2feaa0c55ad015a3bf4f1b",
    "model claude-sonnet-5-5 replied; claude-3-5-haiku-20241022 was slower",
    "base64 of words: aGVsbG8gd29ybGQ= and dGhlIHF1aWNrIGJyb3duIGZveA==",
    "eyJ alone is just three letters",
    "mail bob@example.com about it",
    "see https://docs.example.com/path?q=keyword&page=2 and http://localhost:8080/health",
    "connect to https://api.example.com:443/v1 as admin@example.com",
    "http://localhost:8080/users/@alice",
    "usage input_tokens=1200 output_tokens: 380 max_tokens=4096",
    "author: Ada Lovelace",
    "the password is wrong, please try again",
    "errors of this session: 3",
    "primary key=17 in batch_items",
    "signature verified for release v1.2.3",
    "hf_hub_download failed for gpt2",
    "risk-ant-farm and desk-top",
    "postgresql://localhost:5432/studio",
    "postgresql://db.example.com:5432/app?sslmode=require",
    "open /batches?batch=5f1c2d3e",
]
