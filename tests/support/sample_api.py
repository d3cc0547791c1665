from typing import Annotated

from fastapi import APIRouter, Depends
from pydantic import BaseModel, ConfigDict, Field

from functions.runtime.auth import AUTH_RESPONSES, Claims, require

router = APIRouter(responses=AUTH_RESPONSES)


class Greeting(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1, max_length=50)


@router.get("/whoami")
async def whoami(claims: Annotated[Claims, Depends(require("sample:read"))]) -> dict[str, str]:
    return {"sub": claims.sub}


@router.post("/greetings", status_code=201)
async def greet(greeting: Greeting) -> dict[str, str]:
    return {"greeting": f"hello {greeting.name}"}
