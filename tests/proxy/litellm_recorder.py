"""Loaded by the test LiteLLM itself (litellm_config.yaml, `callbacks`), not by pytest: appends the
body of every chat request LiteLLM receives to the JSON-lines file named by
SOLARIS_TEST_LITELLM_RECEIVED, so tests can see what Solaris forwarded. It is the body as LiteLLM
holds it when its hooks run: the fields received, plus a `metadata` of LiteLLM's own."""

import json
import os

from litellm.integrations.custom_logger import CustomLogger


class ReceivedBodies(CustomLogger):
    async def async_pre_call_hook(self, user_api_key_dict, cache, data, call_type):
        path = os.environ.get("SOLARIS_TEST_LITELLM_RECEIVED")
        if path:
            body = (data.get("proxy_server_request") or {}).get("body") or {}
            with open(path, "a", encoding="utf-8") as log:
                log.write(json.dumps(body, default=str) + "\n")
        return data


received = ReceivedBodies()
