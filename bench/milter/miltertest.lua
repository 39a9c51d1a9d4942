-- miltertest.lua - drives one milter as an MTA would, for bench/milter/run.sh's "mt" part:
-- N messages (global n), one connection each, from 127.0.0.1 (a trusted network for both
-- milters), From: bench@example.com, a body of `size` bytes of 78-character text lines sent in
-- 65,535-byte chunks (Postfix's chunk size), each chunk in one write. Every message must come
-- back with a DKIM-Signature header added, else the script fails.
-- Usage: miltertest -D sock=unix:/path -D n=1000 -D size=204800 -s miltertest.lua
local words = { "the", "quick", "brown", "fox", "jumps", "over", "the", "lazy", "dog", "lorem",
                "ipsum", "dolor", "sit", "amet", "consectetur", "adipiscing", "elit" }
local lines, line, k = {}, "", 0
local total = 0
while total < tonumber(size) do
  k = k + 1
  local w = words[(k * 7) % #words + 1]
  if #line + #w + 1 > 78 then
    lines[#lines + 1] = line .. "\r\n"
    total = total + #line + 2
    line = ""
  end
  line = (#line > 0) and (line .. " " .. w) or w
end
local body = table.concat(lines)
local chunks = {}
for i = 1, #body, 65535 do chunks[#chunks + 1] = string.sub(body, i, i + 65534) end

for m = 1, tonumber(n) do
  local conn = mt.connect(sock, 10, 0.1)
  if conn == nil then error("mt.connect(" .. sock .. ") failed") end
  if mt.conninfo(conn, "localhost", "127.0.0.1") ~= nil then error("conninfo failed") end
  mt.macro(conn, SMFIC_MAIL, "i", "BENCH" .. m)
  if mt.mailfrom(conn, "<bench@example.com>") ~= nil then error("mailfrom failed") end
  -- A milter that negotiated SMFIP_NORCPT (sluice-milter when it only signs) gets no RCPT.
  local ok, err = pcall(mt.rcptto, conn, "<rcpt@dest.example>")
  if not ok and not string.find(tostring(err), "NORCPT") then error(err) end
  if ok and err ~= nil then error("rcptto failed") end
  mt.header(conn, "From", "bench@example.com")
  mt.header(conn, "To", "rcpt@dest.example")
  mt.header(conn, "Subject", "bench " .. m)
  mt.header(conn, "Date", "Mon, 07 Dec 2026 09:00:00 +0000")
  mt.header(conn, "Message-ID", "<bench-" .. m .. "@example.com>")
  if mt.eoh(conn) ~= nil then error("eoh failed") end
  for _, c in ipairs(chunks) do
    if mt.bodystring(conn, c) ~= nil then error("body failed") end
  end
  if mt.eom(conn) ~= nil then error("eom failed") end
  if not mt.eom_check(conn, MT_HDRINSERT, "DKIM-Signature") and not mt.eom_check(conn, MT_HDRADD, "DKIM-Signature") then
    error("message " .. m .. " was not signed")
  end
  mt.disconnect(conn)
end
