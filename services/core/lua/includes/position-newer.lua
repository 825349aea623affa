--[[
position-newer: compares two parity positions, encodePosition() form "<16 hex lsn>:<10 digit ordinal>"
(services/core/lsn.ts). Included with `--- @include "position-newer"`.

positionNewer(a, b) returns true when a is strictly newer than b.

Positions are compared as numbers, not with Lua's `<` on strings: Redis calls
setlocale(LC_COLLATE, "") at start-up and Lua's string comparison uses strcoll, so string order
depends on the server's environment. Three integers (two 32-bit LSN halves, the ordinal) fit a
Lua double exactly.
]]
local function positionParse(p)
  return tonumber(string.sub(p, 1, 8), 16), tonumber(string.sub(p, 9, 16), 16), tonumber(string.sub(p, 18), 10)
end

local function positionNewer(a, b)
  local a1, a2, a3 = positionParse(a)
  local b1, b2, b3 = positionParse(b)
  if a1 ~= b1 then return a1 > b1 end
  if a2 ~= b2 then return a2 > b2 end
  return a3 > b3
end
