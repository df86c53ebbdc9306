-- Argo CD health check for npmregistry.dev/NpmRegistry. Install it in argocd-cm as
-- resource.customizations.health.npmregistry.dev_NpmRegistry (see operator/README.md).
-- Reads the operator's kstatus-style conditions: Degraded=True -> Degraded, Ready=True for the
-- current generation -> Healthy, anything else -> Progressing.
local hs = { status = "Progressing", message = "Waiting for the operator to report status" }
if obj.status == nil or obj.status.conditions == nil then
  return hs
end
local generation = obj.metadata.generation
local observed = obj.status.observedGeneration
if generation ~= nil and (observed == nil or observed < generation) then
  hs.message = "Waiting for the operator to observe generation " .. tostring(generation)
  return hs
end
local function describe(c)
  if c.message ~= nil and c.message ~= "" then
    return c.reason .. ": " .. c.message
  end
  return c.reason
end
for _, c in ipairs(obj.status.conditions) do
  if c.type == "Degraded" and c.status == "True" then
    hs.status = "Degraded"
    hs.message = describe(c)
    return hs
  end
end
for _, c in ipairs(obj.status.conditions) do
  if c.type == "Ready" then
    if c.status == "True" then
      hs.status = "Healthy"
    end
    hs.message = describe(c)
    return hs
  end
end
return hs
